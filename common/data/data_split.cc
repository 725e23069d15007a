#include "common/data/data_split.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"
#include "common/data/segmentation_data.h"

namespace fedmi {
namespace {

std::vector<int64_t> ClassCounts(const ImageSet& images, int64_t num_classes) {
  std::vector<int64_t> counts(num_classes, 0);
  for (int64_t label : images.labels) ++counts[label];
  return counts;
}

int64_t MaxLabel(const ImageSet& images) {
  int64_t max_label = -1;
  for (int64_t label : images.labels) max_label = std::max(max_label, label);
  return max_label;
}

}  // namespace

absl::StatusOr<std::vector<SiteShardReport>> SplitDataset(const DataSplitOptions& options) {
  if (options.input.empty()) return absl::InvalidArgumentError("data split needs an input file");
  if (options.out_dir.empty()) {
    return absl::InvalidArgumentError("data split needs an output directory");
  }
  if (options.sites < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("data split needs at least 1 site, got ", options.sites));
  }
  std::error_code ec;
  if (!std::filesystem::exists(options.input, ec)) {
    return absl::NotFoundError(absl::StrCat("data file ", options.input, " does not exist"));
  }
  ImageSet train, val;
  if (std::filesystem::is_directory(options.input, ec)) {
    // Image and DICOM folders: their train and val, val held out of train
    // (val_fraction) when the folder has none.
    // Segmentation folders keep their masks in the shards.
    SiteDataOptions load = options.load;
    load.with_masks = load.with_masks || IsSegmentationFolder(options.input);
    ASSIGN_OR_RETURN(SiteDataset site, LoadSiteDataset(options.input, load));
    train = std::move(site.train);
    val = std::move(site.val);
  } else {
    // An npz keeps its own image size: shards are cut, not resampled.
    ASSIGN_OR_RETURN(auto arrays, ReadNpz(options.input));
    // Masks, when the npz has them, are cut with their images.
    const bool with_masks = arrays.count("train_masks") > 0;
    ASSIGN_OR_RETURN(train, ImageSetFromNpz(arrays, options.input, "train", with_masks));
    ASSIGN_OR_RETURN(val, ImageSetFromNpz(arrays, options.input, "val", with_masks));
  }

  PartitionOptions train_partition = options.partition;
  train_partition.sites = options.sites;
  absl::StatusOr<std::vector<std::vector<int64_t>>> train_rows =
      PartitionIndices(train.labels, train_partition);
  if (!train_rows.ok()) {
    return absl::Status(
        train_rows.status().code(),
        absl::StrCat("cannot split train of ", options.input, ": ", train_rows.status().message()));
  }
  // The val split is usually a tenth of train; a site still needs a few val
  // rows to report metrics, so shrink the minimum to what val can afford
  // under skew (20 sites at alpha 0.5 rarely all get 10 of 524 rows).
  PartitionOptions val_partition = train_partition;
  val_partition.seed = options.partition.seed + 1;
  val_partition.min_per_site = std::min<int64_t>(
      options.partition.min_per_site, std::max<int64_t>(1, val.size() / (8 * options.sites)));
  absl::StatusOr<std::vector<std::vector<int64_t>>> val_rows =
      PartitionIndices(val.labels, val_partition);
  if (!val_rows.ok()) {
    return absl::Status(
        val_rows.status().code(),
        absl::StrCat("cannot split val of ", options.input, ": ", val_rows.status().message()));
  }

  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create output directory ", options.out_dir, ": ", ec.message()));
  }
  const int64_t num_classes = std::max<int64_t>({MaxLabel(train) + 1, MaxLabel(val) + 1, 2});
  std::vector<SiteShardReport> reports;
  for (int site = 0; site < options.sites; ++site) {
    const ImageSet site_train = SelectRows(train, (*train_rows)[site]);
    const ImageSet site_val = SelectRows(val, (*val_rows)[site]);
    std::map<std::string, NpyArray> shard;
    ASSIGN_OR_RETURN(shard["train_images"], ImagesToNpy(site_train));
    shard["train_labels"] = LabelsToNpy(site_train);
    ASSIGN_OR_RETURN(shard["val_images"], ImagesToNpy(site_val));
    shard["val_labels"] = LabelsToNpy(site_val);
    if (train.has_masks()) {
      ASSIGN_OR_RETURN(shard["train_masks"], MasksToNpy(site_train));
      ASSIGN_OR_RETURN(shard["val_masks"], MasksToNpy(site_val));
    }

    SiteShardReport report;
    report.site = absl::StrCat("site-", site + 1);
    report.path = (std::filesystem::path(options.out_dir) / (report.site + ".npz")).string();
    RETURN_IF_ERROR(WriteNpz(report.path, shard));
    report.train_class_counts = ClassCounts(site_train, num_classes);
    report.val_class_counts = ClassCounts(site_val, num_classes);
    reports.push_back(std::move(report));
  }
  return reports;
}

absl::StatusOr<std::vector<SiteShardReport>> DescribeShards(const std::string& dir, int sites) {
  std::vector<SiteShardReport> reports;
  for (int site = 1; site <= sites; ++site) {
    SiteShardReport report;
    report.site = absl::StrCat("site-", site);
    report.path = (std::filesystem::path(dir) / (report.site + ".npz")).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(report.path, ec)) {
      return absl::NotFoundError(absl::StrCat("shard ", report.path, " does not exist (", sites,
                                              " sites need site-1.npz to site-", sites, ".npz in ",
                                              dir, ")"));
    }
    ASSIGN_OR_RETURN(report, DescribeShard(report.site, report.path));
    reports.push_back(std::move(report));
  }
  return reports;
}

absl::StatusOr<SiteShardReport> DescribeShard(const std::string& site, const std::string& path) {
  SiteShardReport report;
  report.site = site;
  report.path = path;
  ASSIGN_OR_RETURN(SiteDataset data, LoadSiteDataset(path));
  report.train_class_counts = ClassCounts(data.train, data.num_classes);
  report.val_class_counts = ClassCounts(data.val, data.num_classes);
  report.unlabelled = data.unlabelled.images.size();
  return report;
}

}  // namespace fedmi
