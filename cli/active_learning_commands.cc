// `fedmi al rank` and `fedmi al import`: federated active learning, run at
// a site. rank scores the site's unlabelled images with the current global
// model and lists the ones a radiologist should label next; import adds
// the labels the radiologist filled in to the site's data. Nothing here
// talks to the coordinator: the images, the list and the labels stay on
// this machine.
#include <CLI/CLI.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_files.h"
#include "cli/scarce_labels.h"
#include "client/active_learning.h"
#include "common/base/csv.h"
#include "common/base/status.h"
#include "common/data/unlabelled_data.h"
#include "common/evaluation/acquisition.h"

namespace fedmi::cli {
namespace {

struct RankOptions {
  std::string model;
  std::string data;
  std::string budget;
  std::string method = "entropy";
  std::string out = "to-label.csv";
  std::string sheet;  // empty: out with .png
  int mc_passes = 20;
  uint64_t seed = 0;
  int threads = 0;
};

int Rank(const GlobalOptions& global, const RankOptions& options) {
  absl::StatusOr<AcquisitionMethod> method = ParseAcquisitionMethod(options.method);
  if (!method.ok()) return ReportUsageError(std::string(method.status().message()));
  absl::StatusOr<AcquisitionBudget> asked = ParseAcquisitionBudget(options.budget);
  if (!asked.ok()) return ReportUsageError(absl::StrCat("--", asked.status().message()));
  TorchModelRunner().SetThreads(options.threads);
  absl::StatusOr<ScoredSite> site =
      LoadAndScoreSite(options.model, options.data, *method, options.mc_passes, options.seed);
  if (!site.ok()) return ReportError(site.status());
  const int64_t budget = asked->Images(site->data.train.size() + site->scored.view.rows);
  absl::StatusOr<std::vector<AcquiredImage>> chosen =
      Acquire(*method, site->scored.view, budget, options.seed, site->scored.duplicate);
  if (!chosen.ok()) return ReportError(chosen.status());

  const std::string sheet = options.sheet.empty()
                                ? absl::StrCat(absl::StripSuffix(options.out, ".csv"), ".png")
                                : options.sheet;
  if (absl::Status written = WriteToLabelList(site->data.unlabelled, site->scored.view, *chosen,
                                              *method, options.out, sheet);
      !written.ok()) {
    return ReportError(written);
  }
  const double top = chosen->empty() ? 0 : chosen->front().score;
  const double last = chosen->empty() ? 0 : chosen->back().score;
  if (global.json) {
    PrintJsonLine({{"method", AcquisitionMethodName(*method)},
                   {"unlabelled", site->scored.view.rows},
                   {"labelled", site->data.train.size()},
                   {"budget", budget},
                   {"chosen", chosen->size()},
                   {"duplicates_skipped", site->scored.duplicates},
                   {"score_first", top},
                   {"score_last", last},
                   {"out", options.out},
                   {"sheet", sheet}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "ranked %d unlabelled images by %s (%d labelled; %d equal copies skipped)\n"
      "the %d to label next are in %s (scores %.3f down to %.3f), thumbnails in %s\n"
      "fill in the label column, then: fedmi al import %s --data %s\n",
      site->scored.view.rows, AcquisitionMethodName(*method), site->data.train.size(),
      site->scored.duplicates, chosen->size(), options.out, top, last, sheet, options.out,
      options.data);
  return kExitOk;
}

struct ImportOptions {
  std::string list;
  std::string data;
};

int Import(const GlobalOptions& global, const ImportOptions& options) {
  absl::StatusOr<FilledInList> labels = ReadFilledInLabels(options.list);
  if (!labels.ok()) return ReportError(labels.status());
  if (labels->rows.empty()) {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat(options.list, " has no filled-in label yet (", labels->empty_rows,
                     " rows with an empty label column); nothing was changed")));
  }
  absl::StatusOr<LabelImportReport> report = ImportLabels(options.data, labels->rows);
  if (!report.ok()) return ReportError(report.status());
  nlohmann::json per_class = nlohmann::json::object();
  std::vector<std::string> parts;
  for (const auto& [label, count] : report->per_class) {
    per_class[std::to_string(label)] = count;
    parts.push_back(absl::StrCat(count, " as class ", label));
  }
  if (global.json) {
    PrintJsonLine({{"imported", report->imported},
                   {"per_class", per_class},
                   {"left_empty", labels->empty_rows},
                   {"unlabelled_left", report->unlabelled_left},
                   {"data", options.data}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "labelled %d images in %s (%s); %d rows of the list were left empty and stay "
      "unlabelled; %d unlabelled images remain\na site daemon started with --al-rounds trains "
      "on them from its next round; restart any other (fedmi-client) so that its next "
      "training uses them\n",
      report->imported, options.data, absl::StrJoin(parts, ", "), labels->empty_rows,
      report->unlabelled_left);
  return kExitOk;
}

}  // namespace

void AddScarceLabelCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddLabelAuditCommand(app.get_subcommand("data"), global, result);
  CLI::App* al = app.add_subcommand(
      "al",
      "Active learning at a site: rank the unlabelled images a radiologist should label next, "
      "and import the labels they give. Nothing leaves the site");
  al->require_subcommand(1);

  auto rank_options = std::make_shared<RankOptions>();
  CLI::App* rank = al->add_subcommand(
      "rank",
      "Score the site's unlabelled images with a model (the current global one) and write the "
      "--budget most informative to a CSV with an empty label column, and their thumbnails to "
      "a contact sheet PNG");
  rank->add_option("--model", rank_options->model, "model file (.pt or .safetensors)")->required();
  rank->add_option("--data", rank_options->data,
                   "the site's data: an .npz with unlabelled_images, an image folder with "
                   "unlabelled/, or a DICOM folder whose labels.csv has rows with an empty label "
                   "(docs/data.md)")
      ->required();
  rank->add_option("--budget", rank_options->budget,
                   "how many to label: a count (40) or a share of the site's training images, "
                   "labelled and not (5%)")
      ->required();
  rank->add_option("--method", rank_options->method,
                   "entropy, margin, bald (Monte-Carlo dropout), coreset (k-center greedy on "
                   "the model's embeddings) or random")
      ->check(CLI::IsMember({"entropy", "margin", "bald", "coreset", "random"}))
      ->capture_default_str();
  rank->add_option("--out", rank_options->out, "the list to fill in (CSV)")->capture_default_str();
  rank->add_option("--sheet", rank_options->sheet,
                   "contact sheet of the chosen images (default: --out with .png)");
  AddCheckedOption(rank, "--mc-passes", rank_options->mc_passes, "bald: Monte-Carlo dropout passes",
                   CLI::Range(2, 1000));
  rank->add_option("--seed", rank_options->seed, "seeds dropout (bald) and random")
      ->capture_default_str();
  rank->add_option("--threads", rank_options->threads,
                   "LibTorch threads (default: every CPU this process may use)");
  rank->add_flag("--json", global.json, "print one JSON object as the last line");
  rank->callback([&global, &result, rank_options] {
    RunCommand(result, [&] { return Rank(global, *rank_options); });
  });

  auto import_options = std::make_shared<ImportOptions>();
  CLI::App* import = al->add_subcommand(
      "import",
      "Add the labels filled in to a list from `fedmi al rank` to the site's data: npz rows "
      "move from unlabelled_images to train_images, folder images into their class folder, "
      "DICOM labels.csv rows get their label cell filled in (a class index, or a class name "
      "where the data names its classes). Rows left empty stay unlabelled");
  import->add_option("list", import_options->list, "the filled-in CSV (columns id and label)")
      ->required();
  import->add_option("--data", import_options->data, "the site's data the list was written for")
      ->required();
  import->add_flag("--json", global.json, "print one JSON object as the last line");
  import->callback([&global, &result, import_options] {
    RunCommand(result, [&] { return Import(global, *import_options);
});
}  // namespace fedmi::cli
);
}

}  // namespace fedmi::cli
