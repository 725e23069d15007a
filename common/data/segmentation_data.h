// Segmentation data: images paired with binary masks (ImageSet::masks).
// Three sources, all read through LoadSiteDataset / LoadDataSplit
// (image_data.h) with SiteDataOptions::with_masks:
//  - an .npz with <split>_images and <split>_masks (uint8, same N, H, W;
//    <split>_labels optional), read by ImageSetFromNpz;
//  - a segmentation folder: images/ and masks/ sub-folders, directly or
//    under train/, val/, test/. images/ holds PNG/JPEG or DICOM (.dcm) files
//    at any depth; the mask of images/<a/b/x.ext> is masks/<a/b/x>.png (the
//    same relative path and stem, extension .png).
// A mask pixel is foreground when nonzero (any channel, after conversion to
// grey). Masks are fitted to the run's geometry with the images' placement
// (image_geometry.h: aspect kept, centred, padded) by nearest neighbour,
// so mask pixel (y, x) is the mask of image pixel (y, x). Labels, when the
// source has none, are 1 for an image whose mask has any foreground and 0
// otherwise.
//
// Pure functions of the file system; thread-safe.
#ifndef FEDMI_COMMON_DATA_SEGMENTATION_DATA_H_
#define FEDMI_COMMON_DATA_SEGMENTATION_DATA_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/data/dataset.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"

namespace fedmi {

// True when `dir` has images/ and masks/ sub-folders, directly or under
// train/.
bool IsSegmentationFolder(const std::string& dir);

// Loads the image/mask pairs of <dir>/images and <dir>/masks (one split),
// fitted to height x width x channels; DICOM images are read as
// ReadDicomImage does (first_frame_only as there). Labels as above. Images
// load in sorted relative-path order. `report` (when given) gets source
// "segmentation_folder", the file counts and "resized" conversions.
// Errors: NotFound when dir/images or dir/masks is missing;
// InvalidArgument naming the file for an image without its mask
// ("image <path> has no mask <path>"), a mask without an image, a mask whose
// size differs from its image's, an undecodable image or mask, or no images.
absl::StatusOr<ImageSet> LoadSegmentationFolder(const std::string& dir, int64_t height,
                                                int64_t width, int64_t channels,
                                                bool first_frame_only = false,
                                                DataLoadReport* report = nullptr);

// LoadSiteDataset's part for a segmentation folder: train from <dir>/train
// (or <dir> itself without split folders), val from <dir>/val when present
// (`has_val`). Masks are kept only with options.with_masks.
absl::Status LoadSegmentationSite(const std::string& dir, const SiteDataOptions& options,
                                  SiteDataset& site, bool& has_val);

// LoadDataSplit's part: <dir>/<split>, or <dir> for "train" when it has
// images/ itself. NotFound when the split is absent.
absl::StatusOr<ImageSet> LoadSegmentationSplit(const std::string& dir, const std::string& split,
                                               const SiteDataOptions& options,
                                               DataLoadReport& report);

// InvalidArgument: `path` (a folder that is no segmentation folder) has no
// masks to give.
absl::Status MasksUnavailableError(const std::string& path);

// Sets set.masks from the npz member `member` of `path` (only named in
// errors): uint8, (N, H, W) or (N, H, W, 1) with set's N, H and W; nonzero
// becomes 1. With `fill_labels`, set.labels become 1 for a mask with any
// foreground, else 0. InvalidArgument for a wrong dtype or shape
// ("npz p member 'train_masks' has shape (3, 8, 9) but train_images is
// (3, 8, 8)").
absl::Status ReadNpzMasks(const NpyArray& masks, const std::string& path, const std::string& member,
                          bool fill_labels, ImageSet& set);

// The masks as a "|u1" (N, H, W) array of 0/1. InvalidArgument when the mask
// buffer size does not match size() * MaskBytes() (a non-empty set without
// masks).
absl::StatusOr<NpyArray> MasksToNpy(const ImageSet& images);

// 1 when `mask` (MaskBytes() bytes) has any foreground pixel, else 0: the
// label of a segmentation example without one.
int64_t LabelOfMask(const uint8_t* mask, int64_t pixels);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_SEGMENTATION_DATA_H_
