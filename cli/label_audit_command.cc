// `fedmi data audit-labels`: the CLI face of the site's label audit
// (client/label_audit.h): loads the model and the site's data, reports each
// fold's progress, and writes the ranked list. Runs at the site; the list
// it writes stays there.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_files.h"
#include "cli/scarce_labels.h"
#include "client/label_audit.h"
#include "common/base/csv.h"
#include "common/base/status.h"

namespace fedmi::cli {
namespace {

struct AuditOptions {
  std::string model;
  std::string data;
  std::string out = "suspects.csv";
  SiteLabelAuditOptions audit;
  int threads = 0;
};

int AuditLabelsCommand(const GlobalOptions& global, const AuditOptions& options) {
  TorchModelRunner().SetThreads(options.threads);
  absl::StatusOr<std::unique_ptr<ml::LocalModel>> model = LoadModelFile(options.model);
  if (!model.ok()) return ReportError(model.status());
  absl::StatusOr<SiteDataset> data = LoadSiteForModel((*model)->config(), options.data);
  if (!data.ok()) return ReportError(data.status());
  if (options.audit.epochs == 0) {
    std::cerr << absl::StrFormat("auditing %d labels of %s with the federated model as it is\n",
                                 data->train.size(), options.data);
  } else {
    std::cerr << absl::StrFormat("auditing %d labels of %s with %d-fold cross-validation\n",
                                 data->train.size(), options.data, options.audit.folds);
  }
  absl::StatusOr<LabelAudit> audit =
      AuditSiteLabels(**model, data->train, options.audit, [](const AuditFold& fold) {
        std::cerr << absl::StrFormat(
            "  fold %d of %d: fine-tuned on %d images (loss %.3f), "
            "scored %d\n",
            fold.fold, fold.folds, fold.trained_on, fold.loss, fold.scored);
      });
  if (!audit.ok()) {
    return ReportError(absl::Status(audit.status().code(),
                                    absl::StrCat(options.data, ": ", audit.status().message())));
  }

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
                   {"folds", options.audit.folds},
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
      "cross-validation), and every image whose given class is not the likeliest is flagged "
      "(--epochs 0: scored by the federated model as it is, and as many flagged from the top "
      "as confident learning counts). Writes a CSV, most suspect first");
  audit
      ->add_option("--model", options->model,
                   "the federated model (.pt or .safetensors); when sites train several local "
                   "epochs per round, an early round's (`fedmi model export RUN --round 3 --out "
                   "early.pt`) finds more flipped labels than the final one "
                   "(docs/scarce-labels.md)")
      ->required();
  audit->add_option("--data", options->data, "the site's labelled data (any source)")->required();
  audit->add_option("--out", options->out, "the ranked list (CSV)")->capture_default_str();
  AddCheckedOption(audit, "--folds", options->audit.folds, "cross-validation folds",
                   CLI::Range(2, 20));
  AddCheckedOption(audit, "--epochs", options->audit.epochs,
                   "fine-tuning epochs per fold; 0 scores with the federated model as it is "
                   "(fewer flipped labels found, none at a one-class site; "
                   "docs/scarce-labels.md)",
                   CLI::Range(0, 100));
  AddCheckedOption(audit, "--lr", options->audit.lr, "fine-tuning learning rate (adam)",
                   CLI::PositiveNumber);
  AddCheckedOption(audit, "--batch-size", options->audit.batch_size, "images per step",
                   CLI::Range(1, 4096));
  audit->add_option("--seed", options->audit.seed, "folds and training order")
      ->capture_default_str();
  audit->add_option("--threads", options->threads,
                    "LibTorch threads (default: every CPU this process may use)");
  audit->add_flag("--json", global.json, "print one JSON object as the last line");
  audit->callback([&global, &result, options] {
    RunCommand(result, [&] { return AuditLabelsCommand(global, *options); });
  });
}

}  // namespace fedmi::cli
