// In-memory labelled image data, as read from a MedMNIST .npz, an image
// folder or a DICOM folder. Pixels are 8-bit, channel-last, rows in example
// order. Segmentation data adds one binary mask per image (masks).
//
// Plain value types: not thread-safe to mutate concurrently; copying is
// explicit and costs the pixel buffer.
#ifndef FEDMI_COMMON_DATA_DATASET_H_
#define FEDMI_COMMON_DATA_DATASET_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fedmi {

struct ImageSet {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 1;
  std::vector<uint8_t> pixels;  // size() == size() * height * width * channels
  std::vector<int64_t> labels;  // one class index per example
  // Segmentation masks: one height x width plane per example, aligned with
  // `pixels` (mask i covers image i, pixel for pixel), 1 = foreground and
  // 0 = background. Empty when the set has no masks; every operation that
  // selects, reorders or resizes rows keeps it aligned.
  std::vector<uint8_t> masks;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t ImageBytes() const { return height * width * channels; }
  int64_t MaskBytes() const { return height * width; }
  bool has_masks() const { return !masks.empty(); }
};

// The rows `rows` of `images` (in that order, repeats allowed), with their
// labels and, when `images` has masks, their masks. Rows must be in range.
ImageSet SelectRows(const ImageSet& images, const std::vector<int64_t>& rows);

// What loading a data source did: files used and skipped (with why), and
// the conversions made to reach the requested geometry. Printed by the site
// daemon and `fedmi data inspect`.
struct DataLoadReport {
  std::string source;  // "npz", "image_folder", "dicom_folders" or "dicom_csv".
  int64_t files_seen = 0;
  int64_t files_loaded = 0;
  int64_t files_skipped = 0;
  int64_t files_unlabelled = 0;  // DICOM files labels.csv does not name: ignored.
  // Skipped files per reason: a DicomRefusalName ("not_dicom", ...),
  // "missing_file" (a labels.csv row without its file) or "undecodable".
  std::map<std::string, int64_t> skipped_by_reason;
  // The first few skipped files as "<path>: <reason>".
  std::vector<std::string> first_skipped;
  // Images changed on the way, per kind: "resized", "colour_to_grey",
  // "grey_to_rgb", "first_frame".
  std::map<std::string, int64_t> conversions;
  // Class names in index order, when the source names its classes.
  std::vector<std::string> class_names;
};

// Images a site holds without a label: the pool active learning picks
// from (`fedmi al rank`) and semi-supervised training learns from. Like
// every image, they never leave the site. images.labels holds kNoLabel for
// each, so that size() counts them.
inline constexpr int64_t kNoLabel = -1;
struct UnlabelledPool {
  ImageSet images;
  // Per row, the name `fedmi al import` finds the image by again: the
  // file's path under the data folder ("unlabelled/x.png"), or for an npz
  // the image's content id (ImageId of its bytes as stored), which stays
  // the same when other rows are labelled and removed.
  std::vector<std::string> ids;
};

// 16 hex digits naming an image by its geometry and pixel bytes (FNV-1a,
// 64 bits): equal images, and only those in practice, share it. Used to
// find the same image again in a later load at the same geometry
// (suspected label noise, npz rows to label).
std::string ImageId(const ImageSet& images, int64_t row);

// A site's local data: it trains on `train` and reports metrics on `val`.
struct SiteDataset {
  ImageSet train;
  ImageSet val;
  UnlabelledPool unlabelled;
  int64_t num_classes = 2;
  DataLoadReport report;
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DATASET_H_
