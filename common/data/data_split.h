// The core of `fedmi data split`: cuts one data source (a MedMNIST-style
// .npz, an image folder or a DICOM folder) into one shard per simulated
// site, each a MedMNIST-style .npz that LoadSiteDataset reads.
//
// Not thread-safe against other writers of the same out_dir.
#ifndef FEDMI_COMMON_DATA_DATA_SPLIT_H_
#define FEDMI_COMMON_DATA_DATA_SPLIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/image_data.h"
#include "common/data/partition.h"

namespace fedmi {

struct DataSplitOptions {
  // An .npz with train_* and val_* members (read at its own image size), or
  // an image or DICOM folder (read with `load`: its geometry, val_fraction
  // when it has no val split, max_bad_fraction).
  std::string input;
  SiteDataOptions load;
  // Number of shards. Overrides partition.sites.
  int sites = 3;
  PartitionOptions partition;
  std::string out_dir;
};

struct SiteShardReport {
  std::string site;  // "site-1", ...
  std::string path;  // <out_dir>/site-1.npz
  // Rows per class index, 0 .. num_classes - 1, where num_classes is
  // max label + 1 over the input's train and val splits (at least 2).
  std::vector<int64_t> train_class_counts;
  std::vector<int64_t> val_class_counts;
  int64_t unlabelled = 0;  // images in unlabelled_images
};

// Reads the input's train and val splits (LoadSiteDataset for folders), partitions train with
// `options.partition` and val with the same options but seed + 1 and
// min_per_site = min(partition.min_per_site, max(1, val_rows / (8 * sites))), and
// writes <out_dir>/site-<k>.npz (k = 1..sites) holding train_images,
// train_labels, val_images, val_labels in MedMNIST layout (labels uint8
// (N,1)), plus train_masks and val_masks (uint8 (N,H,W), each mask with its
// image) when the input has masks (an npz with train_masks, or a
// segmentation folder). Creates out_dir; replaces existing shards of the same names. Rows
// keep the input's order within each shard.
// Errors: InvalidArgument for empty input/out_dir or sites < 1; the loaders'
// errors (NotFound for a missing input or val split); PartitionIndices'
// errors; Internal when out_dir or a shard cannot be written.
absl::StatusOr<std::vector<SiteShardReport>> SplitDataset(const DataSplitOptions& options);

// What <dir>/site-1.npz .. site-<sites>.npz hold, for shards made earlier
// (and perhaps labelled further with `fedmi al import`). NotFound naming a
// missing shard; LoadSiteDataset's errors.
absl::StatusOr<std::vector<SiteShardReport>> DescribeShards(const std::string& dir, int sites);
// One shard's report; LoadSiteDataset's errors.
absl::StatusOr<SiteShardReport> DescribeShard(const std::string& site, const std::string& path);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DATA_SPLIT_H_
