// `fedmi data split` (and `fedmi data inspect`, cli/data_inspect.cc; `data
// to-dicom`, cli/data_to_dicom.cc; `data phantoms`, cli/data_phantoms.cc).
#include <cmath>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/base/status.h"
#include "common/data/data_split.h"
#include "common/data/label_simulation.h"
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
  double labelled_fraction = 1;
  std::string flip_labels;  // SITE:FRACTION
};

// --flip-labels SITE:FRACTION as (1-based site, fraction); (0, 0) when
// not given.
absl::StatusOr<std::pair<int, double>> ParseFlipLabels(const SplitOptions& options) {
  if (options.flip_labels.empty()) return std::make_pair(0, 0.0);
  const std::vector<std::string> parts = absl::StrSplit(options.flip_labels, ':');
  absl::string_view site = parts[0];
  absl::ConsumePrefix(&site, "site-");
  int flip_site = 0;
  double flip_fraction = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(site, &flip_site) || flip_site < 1 ||
      flip_site > options.sites || !absl::SimpleAtod(parts[1], &flip_fraction) ||
      !(flip_fraction >= 0 && flip_fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--flip-labels '", options.flip_labels, "' is not SITE:FRACTION with SITE site-1 to site-",
        options.sites, " and FRACTION in [0, 1]"));
  }
  return std::make_pair(flip_site, flip_fraction);
}

// Simulated scarcity and noise (common/data/label_simulation.h), shard by
// shard, after the split.
absl::Status SimulateLabels(const SplitOptions& options, std::vector<SiteShardReport>& reports) {
  ASSIGN_OR_RETURN(const auto flip, ParseFlipLabels(options));
  const auto [flip_site, flip_fraction] = flip;
  for (size_t i = 0; i < reports.size(); ++i) {
    SiteShardReport& report = reports[i];
    const std::string stem = absl::StrCat(options.out_dir, "/", report.site);
    if (options.labelled_fraction < 1) {
      ASSIGN_OR_RETURN(report.unlabelled,
                       HideTrainingLabels(report.path, options.labelled_fraction,
                                          options.seed * 1000003 + i, stem + ".truth.csv"));
    }
    if (static_cast<int>(i) + 1 == flip_site) {
      RETURN_IF_ERROR(FlipTrainingLabels(report.path, flip_fraction, options.seed * 1000033 + i,
                                         stem + ".flipped.csv")
                          .status());
    }
    if (options.labelled_fraction < 1 || static_cast<int>(i) + 1 == flip_site) {
      ASSIGN_OR_RETURN(SiteShardReport now, DescribeShard(report.site, report.path));
      // Every site's counts run over the same classes.
      now.train_class_counts.resize(report.train_class_counts.size(), 0);
      now.val_class_counts.resize(report.val_class_counts.size(), 0);
      report = std::move(now);
    }
  }
  return absl::OkStatus();
}

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
  if (!(options.labelled_fraction > 0)) {
    return ReportUsageError("--labelled-fraction must be above 0: a site needs a labelled image");
  }
  if (absl::Status flip = ParseFlipLabels(options).status(); !flip.ok()) {
    return ReportUsageError(std::string(flip.message()));
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
  if (absl::Status simulated = SimulateLabels(options, *reports); !simulated.ok()) {
    return ReportError(simulated);
  }

  if (global.json) {
    nlohmann::json sites = nlohmann::json::array();
    for (const auto& report : *reports) {
      sites.push_back({{"site", report.site},
                       {"path", report.path},
                       {"train_examples", Sum(report.train_class_counts)},
                       {"val_examples", Sum(report.val_class_counts)},
                       {"train_class_counts", report.train_class_counts},
                       {"unlabelled", report.unlabelled},
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
  constexpr char kFormat[] = "%-10s  %7s  %-20s  %7s  %-20s  %10s  %s\n";
  std::cout << absl::StrFormat(kFormat, "SITE", "TRAIN", "TRAIN PER CLASS", "VAL", "VAL PER CLASS",
                               "UNLABELLED", "FILE");
  for (const auto& report : *reports) {
    std::cout << absl::StrFormat(kFormat, report.site, absl::StrCat(Sum(report.train_class_counts)),
                                 absl::StrJoin(report.train_class_counts, " / "),
                                 absl::StrCat(Sum(report.val_class_counts)),
                                 absl::StrJoin(report.val_class_counts, " / "),
                                 absl::StrCat(report.unlabelled), report.path);
  }
  std::cout << std::flush;
  return kExitOk;
}

}  // namespace

void AddDataCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddDataCommands(app, global, result, nullptr);
}

void AddDataCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                     std::shared_ptr<ModelRunner> runner) {
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
  AddCheckedOption(split, "--labelled-fraction", options->labelled_fraction,
                   "simulation: keep this share of each shard's training images labelled and "
                   "move the rest to unlabelled_images, their labels to <out>/site-<k>.truth.csv "
                   "(for a simulated radiologist; docs/scarce-labels.md)",
                   CLI::Range(0.0, 1.0));
  split
      ->add_option("--flip-labels", options->flip_labels,
                   "simulation: SITE:FRACTION gives that share of one site's labelled training "
                   "images a wrong label, recorded in <out>/site-<k>.flipped.csv")
      ->type_name("SITE:FRACTION");
  split->add_flag("--json", global.json,
                  "print one JSON object as the last line of stdout instead of text");
  split->callback([&global, &result, options] {
    RunCommand(result, [&] { return SplitData(global, *options); });
  });
  AddDataInspectCommand(data, global, result, std::move(runner));
  AddDataToDicomCommand(data, global, result);
  AddDataPhantomsCommand(data, global, result);
}

}  // namespace fedmi::cli
