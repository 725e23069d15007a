// Loading labelled images for training: MedMNIST-style .npz files, folders
// of PNG/JPEG files and DICOM folders (common/data/dicom_data.h), plus the
// conversions back to npy arrays that shard writers need.
//
// Every loader returns an ImageSet with 8-bit, channel-last pixels. Errors
// name the file and the problem ("npz /x has no member 'val_images'").
// Image decoding uses stb_image, whose failure reason is per thread, so the
// loaders are safe to call from several threads.
#ifndef FEDMI_COMMON_DATA_IMAGE_DATA_H_
#define FEDMI_COMMON_DATA_IMAGE_DATA_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/dataset.h"
#include "common/data/npz.h"

namespace fedmi {

// Builds split `split` ("train", "val" or "test") from already-read npz
// members `<split>_images` (uint8, (N,H,W) or (N,H,W,C)) and `<split>_labels`
// (any little-endian integer dtype, (N,1) or (N,)). `path` only names the
// source in errors. With `with_masks`, `<split>_masks` is required too and
// read into masks (segmentation_data.h: ReadNpzMasks), and `<split>_labels`
// is optional (absent: 1 when the mask has foreground, else 0); without it,
// masks are ignored. NotFound when a member is missing; InvalidArgument for a
// wrong dtype or rank, negative labels, or row counts that disagree
// ("train_labels has 10 rows but train_images has 12").
absl::StatusOr<ImageSet> ImageSetFromNpz(const std::map<std::string, NpyArray>& arrays,
                                         const std::string& path, const std::string& split,
                                         bool with_masks = false);

// Reads `path` and returns ImageSetFromNpz of it. NotFound when the file does
// not exist; otherwise ReadNpz's and ImageSetFromNpz's errors.
absl::StatusOr<ImageSet> LoadNpzSplit(const std::string& path, const std::string& split,
                                      bool with_masks = false);

// Loads <dir>/<class_name>/*.png|*.jpg|*.jpeg (extensions in any case).
// Class index = position of the sub-folder's name in byte-wise sorted order;
// sub-folders starting with '.' and other files are ignored. Images load in
// sorted file-name order, converted to grayscale (channels 1) or RGB
// (channels 3) and fitted into height x width as image_geometry.h does
// (aspect kept, 0 padding). The sorted class names go to `*class_names` if
// given.
// Errors: NotFound if `dir` does not exist; InvalidArgument if it is not a
// directory, has no class sub-folders, or no images at all, or
// height/width < 1; InvalidArgument "cannot decode image <file>: <reason>"
// for an unreadable image.
absl::StatusOr<ImageSet> LoadImageFolder(const std::string& dir, int64_t height = 28,
                                         int64_t width = 28,
                                         std::vector<std::string>* class_names = nullptr,
                                         int64_t channels = 1);

struct SiteDataOptions {
  // Share of the training rows held out for validation when the data has no
  // validation split of its own. In [0, 1); 0 leaves `val` empty.
  double val_fraction = 0.1;
  // Seeds the hold-out shuffle, so the same seed gives the same split.
  uint64_t seed = 0;
  // The geometry every source is brought to (image_geometry.h: aspect kept,
  // 0 padding; channels 1 = grey, 3 = RGB). npz images already at this
  // geometry pass through untouched.
  int64_t height = 28;
  int64_t width = 28;
  int64_t channels = 1;
  // DICOM folders: the largest share of unusable files that still loads,
  // and whether multi-frame files contribute their first frame (else they
  // are skipped as multi_frame).
  double max_bad_fraction = 0.05;
  bool first_frame_only = false;
  // DICOM decoding threads; 0 means one per core.
  int64_t threads = 0;
  // Segmentation: every image comes with its mask (ImageSet::masks), fitted
  // like the image; sources without masks are refused (InvalidArgument).
  // Off: masks are never loaded, whatever the source has.
  bool with_masks = false;
};

// Loads a site's data from either
//  - an .npz file (any regular file is read as one) with train_images /
//    train_labels and optionally val_images / val_labels (with_masks:
//    <split>_masks too, labels optional), or
//  - a segmentation folder (IsSegmentationFolder, segmentation_data.h):
//    images/ + masks/, directly or under train/ (+ val/), or
//  - a DICOM folder (IsDicomFolder; layouts in common/data/dicom_data.h):
//    its train and val splits, or
//  - a directory of images: with train/ (and optionally val/) sub-folders
//    those are image folders; otherwise the class folders sit directly in
//    it. Classes of val/ are matched to train/'s by name.
// Every source is fitted to options' geometry; `report` says what was
// loaded, skipped and converted.
// Without a validation split, round(val_fraction * N) training rows (at
// least one, leaving at least one for training, when val_fraction > 0 and
// N >= 2) become validation rows, chosen by a shuffle seeded with `seed`;
// both parts keep the original row order.
// num_classes = max label + 1 over train and val, at least 2 and, for image
// folders, at least the number of class folders.
// Errors: NotFound "data file <path> does not exist"; InvalidArgument for
// val_fraction outside [0, 1), an npz with only one of val_images/val_labels,
// no training rows, train and val images of different sizes, a val class
// that train lacks; plus the loaders' errors.
absl::StatusOr<SiteDataset> LoadSiteDataset(const std::string& path,
                                            const SiteDataOptions& options = {});

// One labelled split ("train", "val" or "test") of any source above, at
// options' geometry (val_fraction and seed unused: no hold-out). Image
// folders take <path>/<split>/ (or <path> itself for "train" when it has no
// split sub-folders), with class indices by train/'s names when train/
// exists. Errors: NotFound when the source lacks the split; the loaders'
// errors otherwise. `report`, when given, receives the load report.
absl::StatusOr<ImageSet> LoadDataSplit(const std::string& path, const std::string& split,
                                       const SiteDataOptions& options = {},
                                       DataLoadReport* report = nullptr);

// Fits every image of `images` to height x width x channels in place
// (image_geometry.h), and its mask, when it has masks, with ResizeMaskPadded
// (same placement, nearest neighbour), counting "resized", "colour_to_grey" and
// "grey_to_rgb" in `report` when given. Images already at the geometry are
// untouched. InvalidArgument for channels other than 1 or 3 on either side.
absl::Status FitImageSet(ImageSet& images, int64_t height, int64_t width, int64_t channels,
                         DataLoadReport* report = nullptr);

// The images as a "|u1" array shaped (N,H,W) when channels == 1, else
// (N,H,W,C), like MedMNIST. InvalidArgument when the pixel buffer size does
// not match size() * ImageBytes().
absl::StatusOr<NpyArray> ImagesToNpy(const ImageSet& images);

// The labels shaped (N,1) like MedMNIST: "|u1" when every label fits in
// 0..255, otherwise "<i8" so no label is ever truncated.
NpyArray LabelsToNpy(const ImageSet& images);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_IMAGE_DATA_H_
