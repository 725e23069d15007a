// Unlabelled images at a site (UnlabelledPool, dataset.h), and giving some
// of them labels: what `fedmi al import` does once the site's radiologist
// has filled in the list `fedmi al rank` wrote.
//
// Where a source keeps them:
//   npz           an `unlabelled_images` member, uint8 (N,H,W) or (N,H,W,C)
//                 at the training images' size; an image's id is ImageId of
//                 its bytes as stored.
//   image folder  <dir>/unlabelled/*.png|*.jpg|*.jpeg (beside train/ or the
//                 class folders, so no class may be called "unlabelled");
//                 an image's id is "unlabelled/<file name>".
//   DICOM folder  rows of labels.csv with an empty label (dicom_data.h);
//                 an image's id is its row's file or SOPInstanceUID.
// Nothing is sent anywhere: these functions read and rewrite local files.
#ifndef FEDMI_COMMON_DATA_UNLABELLED_DATA_H_
#define FEDMI_COMMON_DATA_UNLABELLED_DATA_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/data/dataset.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"

namespace fedmi {

inline constexpr char kUnlabelledFolder[] = "unlabelled";
inline constexpr char kNpzUnlabelledImages[] = "unlabelled_images";

// Fills `pool` from the npz's unlabelled_images member, if it has one.
// InvalidArgument naming the member for a wrong dtype or rank.
absl::Status UnlabelledFromNpz(const std::map<std::string, NpyArray>& arrays,
                               const std::string& path, UnlabelledPool& pool);

// Fills `pool` from <dir>/unlabelled/, if it exists, at options' geometry.
// AppendImage's errors for an undecodable file.
absl::Status LoadUnlabelledFolder(const std::string& dir, const SiteDataOptions& options,
                                  UnlabelledPool& pool);

// The unlabelled images of any source above (none for other sources), at
// options' geometry. The readers' errors.
absl::StatusOr<UnlabelledPool> LoadUnlabelledPool(const std::string& path,
                                                  const SiteDataOptions& options);

// One filled-in row of a to-label list: the image's id and the label the
// radiologist gave, as a class index ("1") or, for an image folder, a class
// folder's name ("pneumonia"). `line` names the row in errors.
struct NewLabel {
  std::string id;
  std::string label;
  int64_t line = 0;
};

struct LabelImportReport {
  int64_t imported = 0;                  // images that now have a label
  std::map<int64_t, int64_t> per_class;  // class index -> images labelled
  int64_t unlabelled_left = 0;           // the pool's size afterwards
};

// Gives each image of `labels` its label at the data source `data_path`
// (npz: moves the rows from unlabelled_images to train_images/train_labels
// and rewrites the file atomically through `env`; DICOM folder with
// labels.csv: fills in the rows' label cells, as class indices or names as
// the file has them, and rewrites it atomically; image folder: moves each
// file into its class folder under train/, or the data folder itself
// without train/). Every row is checked before anything changes:
// NotFound when an id is not in the pool (listing the first few),
// InvalidArgument for a label that is not a known class, or a source with
// no unlabelled images; AlreadyExists when a class folder already has a
// file of that name. An npz image that is there twice (equal bytes) is
// labelled both times.
absl::StatusOr<LabelImportReport> ImportLabels(const std::string& data_path,
                                               const std::vector<NewLabel>& labels,
                                               Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_UNLABELLED_DATA_H_
