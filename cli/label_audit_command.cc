// `fedmi data audit-labels`: which of a site's labelled images likely carry
// a wrong label. Each image is scored by a copy of the federated model
// fine-tuned on the site's other images but not on it (k-fold cross-
// validation, --epochs 3 by default), or with --epochs 0 by the federated
// model as it is, and the scores are read confident-learning style
// (common/evaluation/label_audit.h). Runs at the site; the list it writes
// stays there.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_files.h"
#include "cli/scarce_labels.h"
#include "common/base/csv.h"
#include "common/base/status.h"
#include "common/evaluation/label_audit.h"

namespace fedmi::cli {
namespace {

struct AuditOptions {
  std::string model;
  std::string data;
  std::string out = "suspects.csv";
  int folds = 5;
  int epochs = 3;
  double lr = 1e-3;
  int batch_size = 64;
  uint64_t seed = 0;
  int threads = 0;
};

// Fold of each row: a seeded shuffle within each class, dealt round-robin,
// so every fold sees the class balance of the whole.
std::vector<int> StratifiedFolds(const std::vector<int64_t>& labels, int folds, uint64_t seed) {
  std::vector<int64_t> order(labels.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 random(seed);
  std::shuffle(order.begin(), order.end(), random);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return labels[a] < labels[b]; });
  std::vector<int> fold(labels.size());
  for (size_t i = 0; i < order.size(); ++i) fold[order[i]] = static_cast<int>(i % folds);
  return fold;
}

// Out-of-sample class probabilities of every training row.
absl::StatusOr<std::vector<float>> CrossValidatedProbabilities(const AuditOptions& options,
                                                               const SiteDataset& data,
                                                               ml::LocalModel& model) {
  const int64_t k = model.config().num_classes;
  if (options.epochs == 0) {
    ASSIGN_OR_RETURN(ml::ImageScores scores, model.Score(data.train, {}));
    return std::move(scores.probabilities);
  }
  ASSIGN_OR_RETURN(const TensorBundle global, model.ExportWeights());
  const std::vector<int> fold = StratifiedFolds(data.train.labels, options.folds, options.seed);
  std::vector<float> probabilities(data.train.size() * k);
  for (int f = 0; f < options.folds; ++f) {
    std::vector<int64_t> train_rows, held_out;
    for (int64_t row = 0; row < data.train.size(); ++row) {
      (fold[row] == f ? held_out : train_rows).push_back(row);
    }
    RETURN_IF_ERROR(model.ImportWeights(global));
    ml::TrainOptions train;
    train.epochs = options.epochs;
    train.batch_size = options.batch_size;
    train.lr = options.lr;
    train.seed = options.seed * 1009 + f;
    // The site's own class balance is what gives a minority label away
    // among images the model cannot tell apart (a one-class site's flipped
    // labels); class-weighted fine-tuning hid it and found 0.21 of such a
    // site's flips where this finds 0.94 (docs/scarce-labels.md).
    train.balance_classes = false;
    ASSIGN_OR_RETURN(ml::TrainSummary summary,
                     model.Train(SelectRows(data.train, train_rows), train));
    ASSIGN_OR_RETURN(ml::ImageScores scores, model.Score(SelectRows(data.train, held_out), {}));
    for (size_t i = 0; i < held_out.size(); ++i) {
      std::copy(scores.probabilities.begin() + i * k, scores.probabilities.begin() + (i + 1) * k,
                probabilities.begin() + held_out[i] * k);
    }
    std::cerr << absl::StrFormat(
        "  fold %d of %d: fine-tuned on %d images (loss %.3f), scored %d\n", f + 1, options.folds,
        train_rows.size(), summary.loss, held_out.size());
  }
  return probabilities;
}

int AuditSiteLabels(const GlobalOptions& global, const AuditOptions& options) {
  TorchModelRunner().SetThreads(options.threads);
  absl::StatusOr<std::unique_ptr<ml::LocalModel>> model = LoadModelFile(options.model);
  if (!model.ok()) return ReportError(model.status());
  absl::StatusOr<SiteDataset> data = LoadSiteForModel((*model)->config(), options.data);
  if (!data.ok()) return ReportError(data.status());
  if (options.epochs > 0 && data->train.size() < 2 * options.folds) {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat(options.data, " has ", data->train.size(), " labelled training images; ",
                     options.folds, " folds need at least ", 2 * options.folds)));
  }
  if (options.epochs == 0) {
    std::cerr << absl::StrFormat("auditing %d labels of %s with the federated model as it is\n",
                                 data->train.size(), options.data);
  } else {
    std::cerr << absl::StrFormat("auditing %d labels of %s with %d-fold cross-validation\n",
                                 data->train.size(), options.data, options.folds);
  }
  absl::StatusOr<std::vector<float>> probabilities =
      CrossValidatedProbabilities(options, *data, **model);
  if (!probabilities.ok()) return ReportError(probabilities.status());
  // Out-of-sample probabilities can be taken at their word; the federated
  // model saw these labels.
  absl::StatusOr<LabelAudit> audit =
      AuditLabels(*probabilities, data->train.labels, (*model)->config().num_classes,
                  options.epochs > 0 ? FlagRule::kLikeliestDisagrees : FlagRule::kConfidentCount);
  if (!audit.ok()) return ReportError(audit.status());

  std::string csv = "rank,id,row,label,suggested,p_label,margin,flagged\n";
  for (size_t rank = 0; rank < audit->ranked.size(); ++rank) {
    const LabelSuspect& s = audit->ranked[rank];
    absl::StrAppend(&csv, rank + 1, ",", ImageId(data->train, s.row), ",", s.row, ",", s.given, ",",
                    s.suggested, ",", absl::StrFormat("%.4f,%.4f", s.p_given, s.margin), ",",
                    s.flagged ? 1 : 0, "\n");
  }
  if (absl::Status written = WriteFileAtomically(*Env::Default(), options.out, csv);
      !written.ok()) {
    return ReportError(written);
  }
  const int64_t rows = data->train.size();
  if (global.json) {
    PrintJsonLine({{"labelled", rows},
                   {"flagged", audit->flagged},
                   {"class_thresholds", audit->class_thresholds},
                   {"folds", options.folds},
                   {"out", options.out}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "%d of %d labels look wrong (%.1f%%): flagged in %s, every image ranked most suspect "
      "first\nclass thresholds (mean probability of each class over its own images):",
      audit->flagged, rows, 100.0 * audit->flagged / rows, options.out);
  for (size_t c = 0; c < audit->class_thresholds.size(); ++c) {
    std::cout << absl::StrFormat(" %d: %.3f", c, audit->class_thresholds[c]);
  }
  std::cout << "\nhave a radiologist review the flagged images; a site may train with them "
               "down-weighted (fedmi-client --noisy-labels "
            << options.out << " --noisy-label-weight W)\n";
  return kExitOk;
}

}  // namespace

void AddLabelAuditCommand(CLI::App* data, GlobalOptions& global, CommandResult& result) {
  auto options = std::make_shared<AuditOptions>();
  CLI::App* audit = data->add_subcommand(
      "audit-labels",
      "Rank a site's labelled images by how likely their label is wrong: each is scored by a "
      "copy of the federated model fine-tuned on the site's other images (k-fold "
      "cross-validation; --epochs 0: the federated model as it is), and as many images as "
      "confident learning counts as mislabelled are flagged from the top. Writes a CSV, most "
      "suspect first");
  audit->add_option("--model", options->model, "the federated model (.pt or .safetensors)")
      ->required();
  audit->add_option("--data", options->data, "the site's labelled data (any source)")->required();
  audit->add_option("--out", options->out, "the ranked list (CSV)")->capture_default_str();
  AddCheckedOption(audit, "--folds", options->folds, "cross-validation folds", CLI::Range(2, 20));
  AddCheckedOption(audit, "--epochs", options->epochs,
                   "fine-tuning epochs per fold; 0 scores with the federated model as it is "
                   "(fewer flipped labels found, none at a one-class site; "
                   "docs/scarce-labels.md)",
                   CLI::Range(0, 100));
  AddCheckedOption(audit, "--lr", options->lr, "fine-tuning learning rate (adam)",
                   CLI::PositiveNumber);
  AddCheckedOption(audit, "--batch-size", options->batch_size, "images per step",
                   CLI::Range(1, 4096));
  audit->add_option("--seed", options->seed, "folds and training order")->capture_default_str();
  audit->add_option("--threads", options->threads,
                    "LibTorch threads (default: every CPU this process may use)");
  audit->add_flag("--json", global.json, "print one JSON object as the last line");
  audit->callback([&global, &result, options] {
    RunCommand(result, [&] { return AuditSiteLabels(global, *options); });
  });
}

}  // namespace fedmi::cli
