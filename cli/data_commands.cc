// `fedmi data split` (and `fedmi data inspect`, cli/data_inspect.cc; `data
// to-dicom`, cli/data_to_dicom.cc; `data phantoms`, cli/data_phantoms.cc).
#include <cmath>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/data/data_split.h"
#include "common/data/partition.h"

namespace fedmi::cli {
namespace {

struct SplitOptions {
  std::string input;
  int sites = 3;
  std::string partition = "iid";
  double alpha = 0.5;
  uint64_t seed = 0;
  int64_t min_per_site = 10;
  std::string out_dir;
  int64_t height = 28;
  int64_t width = 28;
  int64_t channels = 1;
  double max_bad_fraction = 0.05;
};

int64_t Sum(const std::vector<int64_t>& counts) {
  return std::accumulate(counts.begin(), counts.end(), int64_t{0});
}

int SplitData(const GlobalOptions& global, const SplitOptions& options) {
  if (options.sites < 1) {
    return ReportUsageError(absl::StrCat("--sites must be at least 1, got ", options.sites));
  }
  auto kind = ParsePartitionKind(options.partition);
  if (!kind.ok()) return ReportUsageError(absl::StrCat("--partition: ", kind.status().message()));
  if (*kind != PartitionKind::kIid && !(options.alpha > 0 && std::isfinite(options.alpha))) {
    return ReportUsageError(absl::StrCat("--alpha must be a positive number, got ", options.alpha));
  }
  if (options.min_per_site < 0) {
    return ReportUsageError(
        absl::StrCat("--min-per-site must not be negative, got ", options.min_per_site));
  }

  DataSplitOptions split;
  split.input = options.input;
  split.sites = options.sites;
  split.out_dir = options.out_dir;
  split.partition.kind = *kind;
  split.partition.alpha = options.alpha;
  split.partition.seed = options.seed;
  split.partition.min_per_site = options.min_per_site;
  split.load.height = options.height;
  split.load.width = options.width;
  split.load.channels = options.channels;
  split.load.max_bad_fraction = options.max_bad_fraction;
  auto reports = SplitDataset(split);
  if (!reports.ok()) return ReportError(reports.status());

  if (global.json) {
    nlohmann::json sites = nlohmann::json::array();
    for (const auto& report : *reports) {
      sites.push_back({{"site", report.site},
                       {"path", report.path},
                       {"train_examples", Sum(report.train_class_counts)},
                       {"val_examples", Sum(report.val_class_counts)},
                       {"train_class_counts", report.train_class_counts},
                       {"val_class_counts", report.val_class_counts}});
    }
    nlohmann::json summary = {{"input", options.input},
                              {"out_dir", options.out_dir},
                              {"partition", PartitionKindName(*kind)},
                              {"seed", options.seed},
                              {"sites", std::move(sites)}};
    if (*kind != PartitionKind::kIid) summary["alpha"] = options.alpha;
    PrintJsonLine(summary);
    return kExitOk;
  }

  std::cout << absl::StrFormat(
      "split %s into %d sites (%s%s, seed %d) in %s\n", options.input, options.sites,
      PartitionKindName(*kind),
      *kind == PartitionKind::kIid ? "" : absl::StrFormat(", alpha %g", options.alpha),
      options.seed, options.out_dir);
  constexpr char kFormat[] = "%-10s  %7s  %-20s  %7s  %-20s  %s\n";
  std::cout << absl::StrFormat(kFormat, "SITE", "TRAIN", "TRAIN PER CLASS", "VAL", "VAL PER CLASS",
                               "FILE");
  for (const auto& report : *reports) {
    std::cout << absl::StrFormat(kFormat, report.site, absl::StrCat(Sum(report.train_class_counts)),
                                 absl::StrJoin(report.train_class_counts, " / "),
                                 absl::StrCat(Sum(report.val_class_counts)),
                                 absl::StrJoin(report.val_class_counts, " / "), report.path);
  }
  std::cout << std::flush;
  return kExitOk;
}

}  // namespace

void AddDataCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* data = app.add_subcommand("data", "Prepare data sets for simulated federations");
  data->require_subcommand(1);

  auto options = std::make_shared<SplitOptions>();
  CLI::App* split = data->add_subcommand(
      "split",
      "Cut a data set (.npz, image folder or DICOM folder) into one MedMNIST-style .npz shard "
      "per site (<out>/site-<k>.npz), with IID, label-skewed (dirichlet) or size-skewed "
      "(quantity) partitions");
  split
      ->add_option("--input", options->input,
                   "labelled data: a MedMNIST-style .npz with train_* and val_* members (kept at "
                   "its own size), or an image or DICOM folder (docs/data.md; fitted to "
                   "--height x --width, val held out of train when it has none)")
      ->required();
  split
      ->add_option_function<int64_t>(
          "--image-size", [options](int64_t side) { options->height = options->width = side; },
          "height and width for folder inputs, as a run's --image-size")
      ->check(CLI::Range(8, 1024));
  AddCheckedOption(split, "--height", options->height, "image height for folder inputs",
                   CLI::PositiveNumber);
  AddCheckedOption(split, "--width", options->width, "image width for folder inputs",
                   CLI::PositiveNumber);
  AddCheckedOption(split, "--channels", options->channels, "1 (grey) or 3 (RGB), folder inputs",
                   CLI::IsMember({1, 3}));
  AddCheckedOption(split, "--max-bad-fraction", options->max_bad_fraction,
                   "largest share of unusable DICOM files a folder input may have",
                   CLI::Range(0.0, 1.0));
  split->add_option("--sites", options->sites, "number of sites (shards), at least 1")
      ->capture_default_str();
  split
      ->add_option("--partition", options->partition,
                   "iid: even random; dirichlet: label skew; quantity: size skew")
      ->capture_default_str();
  split
      ->add_option("--alpha", options->alpha,
                   "Dirichlet concentration for dirichlet/quantity; smaller is more skewed")
      ->capture_default_str();
  split->add_option("--seed", options->seed, "seed of the partition")->capture_default_str();
  split
      ->add_option("--min-per-site", options->min_per_site, "fewest training rows any site may get")
      ->capture_default_str();
  split->add_option("--out", options->out_dir, "directory for the shards (created)")->required();
  split->add_flag("--json", global.json,
                  "print one JSON object as the last line of stdout instead of text");
  split->callback([&global, &result, options] {
    RunCommand(result, [&] { return SplitData(global, *options); });
  });
  AddDataInspectCommand(data, global, result);
  AddDataToDicomCommand(data, global, result);
  AddDataPhantomsCommand(data, global, result);
}

}  // namespace fedmi::cli
