#include "common/data/image_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "common/data/dicom_data.h"
#include "common/data/image_files_internal.h"
#include "common/data/image_geometry.h"
#include "common/data/segmentation_data.h"
#include "common/data/unlabelled_data.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace fedmi {
namespace {

namespace fs = std::filesystem;

bool IsKnownSplit(const std::string& split) {
  return split == "train" || split == "val" || split == "test";
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

// Reads element `index` of a little-endian (or byte-order-free) integer
// array; the dtype has been validated by the caller.
int64_t IntegerAt(const NpyArray& array, int64_t item_size, bool is_signed, int64_t index) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(array.data.data()) + index * item_size;
  uint64_t raw = 0;
  for (int64_t b = 0; b < item_size; ++b) raw |= static_cast<uint64_t>(bytes[b]) << (8 * b);
  if (is_signed && item_size < 8 && (raw >> (8 * item_size - 1)) & 1) {
    raw |= ~uint64_t{0} << (8 * item_size);  // Sign-extend.
  }
  return static_cast<int64_t>(raw);
}

absl::StatusOr<std::vector<int64_t>> LabelsFromNpy(const NpyArray& array, const std::string& path,
                                                   const std::string& member) {
  const std::string what = absl::StrCat("npz ", path, " member '", member, "'");
  const bool column = array.shape.size() == 2 && array.shape[1] == 1;
  if (array.shape.size() != 1 && !column) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeText(array.shape),
                                                   "; labels must be (N,) or (N, 1)"));
  }
  ASSIGN_OR_RETURN(int64_t item_size, NpyItemSize(array.dtype));
  const char kind = array.dtype[1];
  const bool big_endian = array.dtype[0] == '>' && item_size > 1;
  if ((kind != 'u' && kind != 'i') || item_size > 8 || big_endian) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has dtype ", array.dtype,
                     "; labels must be little-endian integers such as |u1 or <i8"));
  }
  const int64_t rows = array.shape[0];
  std::vector<int64_t> labels(rows);
  for (int64_t i = 0; i < rows; ++i) {
    labels[i] = IntegerAt(array, item_size, kind == 'i', i);
    if (labels[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has negative label ", labels[i], " at row ", i));
    }
  }
  return labels;
}

std::string Lowercase(std::string text) {
  absl::AsciiStrToLower(&text);
  return text;
}

bool IsImageFile(const fs::path& file) {
  const std::string ext = Lowercase(file.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Sorted names of the visible sub-directories of `dir`.
absl::StatusOr<std::vector<std::string>> SortedSubdirectories(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || name == kUnlabelledFolder) continue;
    std::error_code type_ec;
    if (it->is_directory(type_ec)) names.push_back(name);
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot list image folder ", dir, ": ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

absl::StatusOr<std::vector<fs::path>> SortedImageFiles(const fs::path& class_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(class_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && IsImageFile(it->path())) files.push_back(it->path());
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list class folder ", class_dir.string(), ": ", ec.message()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status AppendImage(const fs::path& file, int64_t height, int64_t width, int64_t channels,
                         std::vector<uint8_t>& pixels) {
  int source_width = 0, source_height = 0, source_channels = 0;
  stbi_uc* decoded = stbi_load(file.c_str(), &source_width, &source_height, &source_channels,
                               static_cast<int>(channels));
  if (decoded == nullptr) {
    const char* reason = stbi_failure_reason();
    return absl::InvalidArgumentError(absl::StrCat("cannot decode image ", file.string(), ": ",
                                                   reason != nullptr ? reason : "unknown error"));
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> owned(decoded, stbi_image_free);
  const size_t offset = pixels.size();
  pixels.resize(offset + static_cast<size_t>(height * width * channels));
  ResizePadded(decoded, source_height, source_width, channels, pixels.data() + offset, height,
               width);
  return absl::OkStatus();
}

namespace {

// Re-indexes `images`' labels (indices into `names`) by `reference`'s
// names. InvalidArgument naming `dir` for a class `reference` lacks.
absl::Status IndexByNames(ImageSet& images, const std::vector<std::string>& names,
                          const std::vector<std::string>& reference, const std::string& dir,
                          const std::string& reference_dir) {
  for (int64_t& label : images.labels) {
    const std::string& name = names[label];
    auto it = std::lower_bound(reference.begin(), reference.end(), name);
    if (it == reference.end() || *it != name) {
      return absl::InvalidArgumentError(absl::StrCat("image folder ", dir, " has class '", name,
                                                     "' that ", reference_dir, " lacks"));
    }
    label = it - reference.begin();
  }
  return absl::OkStatus();
}

// Splits `all` into (train, val) by holding out `val_rows` rows chosen by a
// seeded shuffle. Both parts keep `all`'s row order.
void HoldOut(const ImageSet& all, int64_t val_rows, uint64_t seed, ImageSet& train, ImageSet& val) {
  std::vector<int64_t> order(all.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> is_val(all.size(), false);
  for (int64_t i = 0; i < val_rows; ++i) is_val[order[i]] = true;
  std::vector<int64_t> train_rows, val_rows_list;
  for (int64_t row = 0; row < all.size(); ++row) {
    (is_val[row] ? val_rows_list : train_rows).push_back(row);
  }
  train = SelectRows(all, train_rows);
  val = SelectRows(all, val_rows_list);
}

int64_t MaxLabel(const ImageSet& images) {
  int64_t max_label = -1;
  for (int64_t label : images.labels) max_label = std::max(max_label, label);
  return max_label;
}

// Loads an image-folder site: either <dir>/train (+ optional <dir>/val) or
// class folders directly in <dir>. Sets `has_val` when val/ exists.
absl::Status LoadFolderSite(const std::string& dir, const SiteDataOptions& options,
                            SiteDataset& site, bool& has_val) {
  const fs::path root(dir);
  std::error_code ec;
  std::vector<std::string> train_classes;
  if (!fs::is_directory(root / "train", ec)) {
    has_val = false;
    ASSIGN_OR_RETURN(site.train, LoadImageFolder(dir, options.height, options.width, &train_classes,
                                                 options.channels));
  } else {
    ASSIGN_OR_RETURN(site.train, LoadImageFolder((root / "train").string(), options.height,
                                                 options.width, &train_classes, options.channels));
    has_val = fs::is_directory(root / "val", ec);
    if (has_val) {
      std::vector<std::string> val_classes;
      ASSIGN_OR_RETURN(site.val, LoadImageFolder((root / "val").string(), options.height,
                                                 options.width, &val_classes, options.channels));
      // val/ may lack classes train/ has; index its labels by train's names.
      RETURN_IF_ERROR(IndexByNames(site.val, val_classes, train_classes, (root / "val").string(),
                                   (root / "train").string()));
    }
  }
  site.num_classes =
      std::max<int64_t>(site.num_classes, static_cast<int64_t>(train_classes.size()));
  RETURN_IF_ERROR(LoadUnlabelledFolder(dir, options, site.unlabelled));
  site.report.source = "image_folder";
  site.report.files_seen = site.report.files_loaded = site.train.size() + site.val.size();
  site.report.class_names = std::move(train_classes);
  return absl::OkStatus();
}

DicomFolderOptions DicomOptionsOf(const SiteDataOptions& options) {
  DicomFolderOptions dicom;
  dicom.read.height = options.height;
  dicom.read.width = options.width;
  dicom.read.channels = options.channels;
  dicom.read.first_frame_only = options.first_frame_only;
  dicom.max_bad_fraction = options.max_bad_fraction;
  dicom.threads = options.threads;
  return dicom;
}

absl::Status LoadDicomSite(const std::string& dir, const SiteDataOptions& options,
                           SiteDataset& site, bool& has_val) {
  ASSIGN_OR_RETURN(DicomFolderData data, LoadDicomFolder(dir, DicomOptionsOf(options)));
  site.train = std::move(data.splits["train"]);
  has_val = data.splits.count("val") > 0;
  if (has_val) site.val = std::move(data.splits["val"]);
  site.unlabelled.images = std::move(data.splits[kDicomUnlabelledSplit]);
  site.unlabelled.ids = std::move(data.unlabelled_keys);
  // Empty splits still carry the geometry, so size checks below hold.
  for (ImageSet* set : {&site.train, &site.val, &site.unlabelled.images}) {
    set->height = options.height;
    set->width = options.width;
    set->channels = options.channels;
  }
  site.num_classes =
      std::max<int64_t>(site.num_classes, static_cast<int64_t>(data.report.class_names.size()));
  site.report = std::move(data.report);
  return absl::OkStatus();
}

absl::Status CheckGeometry(const SiteDataOptions& options) {
  if (options.height < 1 || options.width < 1 || options.height > 1 << 15 ||
      options.width > 1 << 15 || (options.channels != 1 && options.channels != 3)) {
    return absl::InvalidArgumentError(absl::StrCat("image geometry ", options.height, "x",
                                                   options.width, "x", options.channels,
                                                   " is invalid; sides 1..32768, channels 1 or 3"));
  }
  return absl::OkStatus();
}

absl::Status LoadNpzSite(const std::string& path, bool with_masks, SiteDataset& site,
                         bool& has_val) {
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
  ASSIGN_OR_RETURN(site.train, ImageSetFromNpz(arrays, path, "train", with_masks));
  const bool has_images = arrays.count("val_images") > 0;
  // Segmentation npz files may carry masks instead of labels.
  const bool has_labels =
      arrays.count("val_labels") > 0 || (with_masks && arrays.count("val_masks") > 0);
  if (has_images != has_labels) {
    return absl::InvalidArgumentError(
        absl::StrCat("npz ", path, " has ",
                     has_images ? "val_images but no val_labels" : "val_labels but no val_images"));
  }
  has_val = has_images;
  if (has_val) {
    ASSIGN_OR_RETURN(site.val, ImageSetFromNpz(arrays, path, "val", with_masks));
  }
  return UnlabelledFromNpz(arrays, path, site.unlabelled);
}

}  // namespace

absl::StatusOr<ImageSet> ImageSetFromNpz(const std::map<std::string, NpyArray>& arrays,
                                         const std::string& path, const std::string& split,
                                         bool with_masks) {
  if (!IsKnownSplit(split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown split '", split, "'; expected train, val or test"));
  }
  const std::string images_name = split + "_images";
  const std::string labels_name = split + "_labels";
  const std::string masks_name = split + "_masks";
  const bool has_labels = arrays.count(labels_name) > 0;
  for (const std::string& name : {images_name, with_masks ? masks_name : labels_name}) {
    if (arrays.count(name) == 0) {
      return absl::NotFoundError(absl::StrCat("npz ", path, " has no member '", name, "'"));
    }
  }
  const NpyArray& images = arrays.at(images_name);
  const std::string what = absl::StrCat("npz ", path, " member '", images_name, "'");
  if (images.shape.size() != 3 && images.shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeText(images.shape),
                                                   "; images must be (N,H,W) or (N,H,W,C)"));
  }
  if (images.dtype.size() != 3 || images.dtype[1] != 'u' || images.dtype[2] != '1') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has dtype ", images.dtype, "; images must be uint8 (|u1)"));
  }
  std::vector<int64_t> labels(images.shape[0], 0);  // From the masks when absent.
  if (has_labels) {
    ASSIGN_OR_RETURN(labels, LabelsFromNpy(arrays.at(labels_name), path, labels_name));
  }
  if (static_cast<int64_t>(labels.size()) != images.shape[0]) {
    return absl::InvalidArgumentError(absl::StrCat("npz ", path, ": ", labels_name, " has ",
                                                   labels.size(), " rows but ", images_name,
                                                   " has ", images.shape[0]));
  }
  for (size_t axis = 1; axis < images.shape.size(); ++axis) {
    if (images.shape[axis] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeText(images.shape),
                                                     "; image sides and channels must be >= 1"));
    }
  }
  ImageSet set;
  set.height = images.shape[1];
  set.width = images.shape[2];
  set.channels = images.shape.size() == 4 ? images.shape[3] : 1;
  set.pixels.assign(reinterpret_cast<const uint8_t*>(images.data.data()),
                    reinterpret_cast<const uint8_t*>(images.data.data()) + images.data.size());
  set.labels = std::move(labels);
  if (with_masks) {
    RETURN_IF_ERROR(ReadNpzMasks(arrays.at(masks_name), path, masks_name, !has_labels, set));
  }
  return set;
}

absl::StatusOr<ImageSet> LoadNpzSplit(const std::string& path, const std::string& split,
                                      bool with_masks) {
  if (!IsKnownSplit(split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown split '", split, "'; expected train, val or test"));
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("data file ", path, " does not exist"));
  }
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
  return ImageSetFromNpz(arrays, path, split, with_masks);
}

absl::StatusOr<ImageSet> LoadImageFolder(const std::string& dir, int64_t height, int64_t width,
                                         std::vector<std::string>* class_names, int64_t channels) {
  if (channels != 1 && channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("image channels ", channels, " is invalid; expected 1 or 3"));
  }
  if (height < 1 || width < 1 || height > 1 << 15 || width > 1 << 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("image size ", height, "x", width, " is invalid; each side must be 1..32768"));
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("image folder ", dir, " does not exist"));
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("image folder ", dir, " is not a directory"));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> classes, SortedSubdirectories(dir));
  if (classes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image folder ", dir, " has no class sub-folders"));
  }
  ImageSet set;
  set.height = height;
  set.width = width;
  set.channels = channels;
  for (size_t index = 0; index < classes.size(); ++index) {
    ASSIGN_OR_RETURN(std::vector<fs::path> files, SortedImageFiles(fs::path(dir) / classes[index]));
    for (const fs::path& file : files) {
      RETURN_IF_ERROR(AppendImage(file, height, width, channels, set.pixels));
      set.labels.push_back(static_cast<int64_t>(index));
    }
  }
  if (set.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image folder ", dir, " has no .png/.jpg/.jpeg images in its class sub-folders (",
        absl::StrJoin(classes, ", "), ")"));
  }
  if (class_names != nullptr) *class_names = std::move(classes);
  return set;
}

absl::StatusOr<SiteDataset> LoadSiteDataset(const std::string& path,
                                            const SiteDataOptions& options) {
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("val_fraction ", options.val_fraction, " is outside [0, 1)"));
  }
  RETURN_IF_ERROR(CheckGeometry(options));
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("data file ", path, " does not exist"));
  }
  SiteDataset site;
  bool has_val = false;
  if (IsSegmentationFolder(path)) {
    RETURN_IF_ERROR(LoadSegmentationSite(path, options, site, has_val));
  } else if (options.with_masks && fs::is_directory(path, ec)) {
    return MasksUnavailableError(path);
  } else if (IsDicomFolder(path)) {
    RETURN_IF_ERROR(LoadDicomSite(path, options, site, has_val));
  } else if (fs::is_directory(path, ec)) {
    RETURN_IF_ERROR(LoadFolderSite(path, options, site, has_val));
  } else {
    RETURN_IF_ERROR(LoadNpzSite(path, options.with_masks, site, has_val));
    site.report.source = "npz";
    site.report.files_seen = site.report.files_loaded = 1;
    for (ImageSet* set : {&site.train, &site.val, &site.unlabelled.images}) {
      RETURN_IF_ERROR(
          FitImageSet(*set, options.height, options.width, options.channels, &site.report));
    }
  }
  if (site.train.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("data file ", path, " has no training rows"));
  }
  if (has_val) {
    if (site.val.size() > 0 &&
        (site.val.height != site.train.height || site.val.width != site.train.width ||
         site.val.channels != site.train.channels)) {
      return absl::InvalidArgumentError(
          absl::StrCat("data file ", path, " has train images of ", site.train.height, "x",
                       site.train.width, "x", site.train.channels, " but val images of ",
                       site.val.height, "x", site.val.width, "x", site.val.channels));
    }
  } else {
    const int64_t rows = site.train.size();
    int64_t val_rows = std::llround(options.val_fraction * static_cast<double>(rows));
    if (options.val_fraction > 0 && rows >= 2)
      val_rows = std::clamp<int64_t>(val_rows, 1, rows - 1);
    ImageSet all = std::move(site.train);
    HoldOut(all, val_rows, options.seed, site.train, site.val);
  }
  const int64_t max_label = std::max(MaxLabel(site.train), MaxLabel(site.val));
  site.num_classes = std::max<int64_t>({site.num_classes, max_label + 1, 2});
  return site;
}

absl::StatusOr<ImageSet> LoadDataSplit(const std::string& path, const std::string& split,
                                       const SiteDataOptions& options, DataLoadReport* report) {
  if (!IsKnownSplit(split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown split '", split, "'; expected train, val or test"));
  }
  RETURN_IF_ERROR(CheckGeometry(options));
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("data file ", path, " does not exist"));
  }
  DataLoadReport local_report;
  DataLoadReport& out = report != nullptr ? *report : local_report;
  const fs::path root(path);
  if (IsSegmentationFolder(path)) return LoadSegmentationSplit(path, split, options, out);
  if (options.with_masks && fs::is_directory(path, ec)) return MasksUnavailableError(path);
  if (IsDicomFolder(path)) {
    ASSIGN_OR_RETURN(DicomFolderData data, LoadDicomFolder(path, DicomOptionsOf(options)));
    out = std::move(data.report);
    auto found = data.splits.find(split);
    if (found == data.splits.end()) {
      return absl::NotFoundError(absl::StrCat("dicom folder ", path, " has no ", split, " files"));
    }
    return std::move(found->second);
  }
  if (!fs::is_directory(path, ec)) {
    ASSIGN_OR_RETURN(ImageSet images, LoadNpzSplit(path, split, options.with_masks));
    out.source = "npz";
    out.files_seen = out.files_loaded = 1;
    RETURN_IF_ERROR(FitImageSet(images, options.height, options.width, options.channels, &out));
    return images;
  }
  const bool has_train = fs::is_directory(root / "train", ec);
  fs::path dir = root / split;
  if (!fs::is_directory(dir, ec)) {
    if (split != "train" || has_train || fs::is_directory(root / "val", ec) ||
        fs::is_directory(root / "test", ec)) {
      return absl::NotFoundError(absl::StrCat("image folder ", path, " has no ", split, "/"));
    }
    dir = root;
  }
  std::vector<std::string> classes;
  ASSIGN_OR_RETURN(ImageSet images, LoadImageFolder(dir.string(), options.height, options.width,
                                                    &classes, options.channels));
  if (has_train && split != "train") {
    ASSIGN_OR_RETURN(std::vector<std::string> train_classes,
                     SortedSubdirectories((root / "train").string()));
    RETURN_IF_ERROR(
        IndexByNames(images, classes, train_classes, dir.string(), (root / "train").string()));
    classes = std::move(train_classes);
  }
  out.source = "image_folder";
  out.files_seen = out.files_loaded = images.size();
  out.class_names = std::move(classes);
  return images;
}

absl::Status FitImageSet(ImageSet& images, int64_t height, int64_t width, int64_t channels,
                         DataLoadReport* report) {
  if ((channels != 1 && channels != 3) || (images.channels != 1 && images.channels != 3)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot convert images of ", images.channels,
                                                   " channels to ", channels,
                                                   "; only 1 and 3 are supported"));
  }
  const bool resize = images.height != height || images.width != width;
  const bool convert = images.channels != channels;
  if (!resize && !convert) return absl::OkStatus();
  const int64_t source_bytes = images.ImageBytes();
  const int64_t source_pixels = images.height * images.width;
  std::vector<uint8_t> fitted(static_cast<size_t>(images.size() * height * width * channels));
  std::vector<uint8_t> converted(convert ? source_pixels * channels : 0);
  std::vector<uint8_t> fitted_masks(resize && images.has_masks() ? images.size() * height * width
                                                                 : 0);
  for (int64_t row = 0; row < images.size(); ++row) {
    const uint8_t* source = images.pixels.data() + row * source_bytes;
    if (convert) {
      ConvertChannels(source, source_pixels, images.channels, converted.data(), channels);
      source = converted.data();
    }
    ResizePadded(source, images.height, images.width, channels,
                 fitted.data() + row * height * width * channels, height, width);
    if (!fitted_masks.empty()) {
      ResizeMaskPadded(images.masks.data() + row * source_pixels, images.height, images.width,
                       fitted_masks.data() + row * height * width, height, width);
    }
  }
  if (report != nullptr) {
    if (resize) report->conversions["resized"] += images.size();
    if (convert)
      report->conversions[channels == 1 ? "colour_to_grey" : "grey_to_rgb"] += images.size();
  }
  images.height = height;
  images.width = width;
  images.channels = channels;
  images.pixels = std::move(fitted);
  if (resize && images.has_masks()) images.masks = std::move(fitted_masks);
  return absl::OkStatus();
}

absl::StatusOr<NpyArray> ImagesToNpy(const ImageSet& images) {
  const uint64_t expected = static_cast<uint64_t>(images.size()) * images.ImageBytes();
  if (images.height < 1 || images.width < 1 || images.channels < 1 ||
      images.pixels.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image set of ", images.size(), " images of ", images.height, "x", images.width, "x",
        images.channels, " needs ", expected, " pixel bytes but has ", images.pixels.size()));
  }
  NpyArray array;
  array.dtype = "|u1";
  array.shape = {images.size(), images.height, images.width};
  if (images.channels != 1) array.shape.push_back(images.channels);
  array.data.assign(images.pixels.begin(), images.pixels.end());
  return array;
}

NpyArray LabelsToNpy(const ImageSet& images) {
  NpyArray array;
  array.shape = {images.size(), 1};
  const bool fits_uint8 = std::all_of(images.labels.begin(), images.labels.end(),
                                      [](int64_t label) { return label >= 0 && label <= 255; });
  if (fits_uint8) {
    array.dtype = "|u1";
    array.data.reserve(images.labels.size());
    for (int64_t label : images.labels) array.data.push_back(static_cast<char>(label));
  } else {
    array.dtype = "<i8";
    array.data.reserve(images.labels.size() * 8);
    for (int64_t label : images.labels) {
      const uint64_t raw = static_cast<uint64_t>(label);
      for (int b = 0; b < 8; ++b) array.data.push_back(static_cast<char>((raw >> (8 * b)) & 0xff));
    }
  }
  return array;
}

}  // namespace fedmi
