#include "common/data/segmentation_data.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "common/data/dicom_image.h"
#include "common/data/image_geometry.h"

// The implementation is compiled in image_data.cc.
#include <stb/stb_image.h>

namespace fedmi {
namespace {

namespace fs = std::filesystem;

std::string Extension(const fs::path& file) {
  std::string ext = file.extension().string();
  absl::AsciiStrToLower(&ext);
  return ext;
}

bool IsPictureFile(const fs::path& file) {
  const std::string ext = Extension(file);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool IsDicom(const fs::path& file) { return Extension(file) == ".dcm"; }

// Files below `dir` accepted by `keep` (hidden entries skipped), as sorted
// '/'-separated paths relative to `dir`.
absl::StatusOr<std::vector<std::string>> FilesBelow(const fs::path& dir,
                                                    bool (*keep)(const fs::path&)) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && keep(it->path())) {
      files.push_back(it->path().lexically_relative(dir).generic_string());
    }
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot list ", dir.string(), ": ", ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

bool IsMaskFile(const fs::path& file) { return Extension(file) == ".png"; }

struct Decoded {
  int64_t height = 0;
  int64_t width = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels{nullptr, stbi_image_free};
};

absl::StatusOr<Decoded> Decode(const fs::path& file, int channels, const char* what) {
  Decoded out;
  int width = 0, height = 0, source_channels = 0;
  out.pixels.reset(stbi_load(file.c_str(), &width, &height, &source_channels, channels));
  if (out.pixels == nullptr) {
    const char* reason = stbi_failure_reason();
    return absl::InvalidArgumentError(absl::StrCat("cannot decode ", what, " ", file.string(), ": ",
                                                   reason ? reason : "unknown error"));
  }
  out.height = height;
  out.width = width;
  return out;
}

// A mask as one byte per pixel, nonzero where the file's grey value is.
// Decoded at 16 bits: 8-bit decoding keeps a 16-bit file's high byte only,
// which turns a 0/1 mask into background everywhere.
absl::StatusOr<Decoded> DecodeMask(const fs::path& file) {
  Decoded out;
  int width = 0, height = 0, source_channels = 0;
  stbi_us* wide = stbi_load_16(file.c_str(), &width, &height, &source_channels, 1);
  if (wide == nullptr) {
    const char* reason = stbi_failure_reason();
    return absl::InvalidArgumentError(absl::StrCat("cannot decode mask ", file.string(), ": ",
                                                   reason ? reason : "unknown error"));
  }
  // Narrowed in place: byte i is written after word i was read.
  stbi_uc* bytes = reinterpret_cast<stbi_uc*>(wide);
  for (int64_t i = 0; i < int64_t{width} * height; ++i) bytes[i] = wide[i] != 0 ? 1 : 0;
  out.pixels.reset(bytes);
  out.height = height;
  out.width = width;
  return out;
}

}  // namespace

int64_t LabelOfMask(const uint8_t* mask, int64_t pixels) {
  return std::any_of(mask, mask + pixels, [](uint8_t v) { return v != 0; }) ? 1 : 0;
}

bool IsSegmentationFolder(const std::string& dir) {
  std::error_code ec;
  for (const fs::path& root : {fs::path(dir), fs::path(dir) / "train"}) {
    if (fs::is_directory(root / "images", ec) && fs::is_directory(root / "masks", ec)) return true;
  }
  return false;
}

absl::StatusOr<ImageSet> LoadSegmentationFolder(const std::string& dir, int64_t height,
                                                int64_t width, int64_t channels,
                                                bool first_frame_only, DataLoadReport* report) {
  if ((channels != 1 && channels != 3) || height < 1 || width < 1 || height > 1 << 15 ||
      width > 1 << 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("image geometry ", height, "x", width, "x", channels, " is invalid"));
  }
  const fs::path images_dir = fs::path(dir) / "images";
  const fs::path masks_dir = fs::path(dir) / "masks";
  std::error_code ec;
  for (const fs::path& sub : {images_dir, masks_dir}) {
    if (!fs::is_directory(sub, ec)) {
      return absl::NotFoundError(
          absl::StrCat("segmentation folder ", dir, " has no ", sub.filename().string(), "/"));
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> images, FilesBelow(images_dir, [](const fs::path& f) {
                     return IsPictureFile(f) || IsDicom(f);
                   }));
  ASSIGN_OR_RETURN(std::vector<std::string> mask_files, FilesBelow(masks_dir, IsMaskFile));
  if (images.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segmentation folder ", dir, " has no .png/.jpg/.jpeg/.dcm images in images/"));
  }
  std::set<std::string> unmatched(mask_files.begin(), mask_files.end());
  ImageSet set;
  set.height = height;
  set.width = width;
  set.channels = channels;
  int64_t resized = 0;
  const int64_t image_bytes = set.ImageBytes();
  const int64_t mask_bytes = set.MaskBytes();
  for (const std::string& relative : images) {
    const fs::path image_path = images_dir / relative;
    const std::string mask_relative = fs::path(relative).replace_extension(".png").generic_string();
    const fs::path mask_path = masks_dir / mask_relative;
    if (unmatched.erase(mask_relative) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ", image_path.string(), " has no mask ", mask_path.string()));
    }
    int64_t source_height = 0, source_width = 0;
    set.pixels.resize(set.pixels.size() + image_bytes);
    uint8_t* target = set.pixels.data() + set.pixels.size() - image_bytes;
    if (IsDicom(image_path)) {
      DicomReadOptions read;
      read.height = height;
      read.width = width;
      read.channels = channels;
      read.first_frame_only = first_frame_only;
      ASSIGN_OR_RETURN(PreprocessedDicom dicom, ReadDicomImage(image_path.string(), read));
      std::copy(dicom.pixels.begin(), dicom.pixels.end(), target);
      source_height = dicom.facts.rows;
      source_width = dicom.facts.columns;
    } else {
      ASSIGN_OR_RETURN(Decoded image, Decode(image_path, static_cast<int>(channels), "image"));
      ResizePadded(image.pixels.get(), image.height, image.width, channels, target, height, width);
      source_height = image.height;
      source_width = image.width;
    }
    ASSIGN_OR_RETURN(Decoded mask, DecodeMask(mask_path));
    if (mask.height != source_height || mask.width != source_width) {
      return absl::InvalidArgumentError(
          absl::StrCat("mask ", mask_path.string(), " is ", mask.width, "x", mask.height,
                       " (width x height) but image ", image_path.string(), " is ", source_width,
                       "x", source_height));
    }
    set.masks.resize(set.masks.size() + mask_bytes);
    uint8_t* mask_target = set.masks.data() + set.masks.size() - mask_bytes;
    ResizeMaskPadded(mask.pixels.get(), mask.height, mask.width, mask_target, height, width);
    set.labels.push_back(LabelOfMask(mask_target, mask_bytes));
    if (source_height != height || source_width != width) ++resized;
  }
  if (!unmatched.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask ", (masks_dir / *unmatched.begin()).string(), " has no image in ",
                     images_dir.string(), " (", unmatched.size(), " such masks)"));
  }
  if (report != nullptr) {
    report->source = "segmentation_folder";
    report->files_seen += set.size();
    report->files_loaded += set.size();
    if (resized > 0) report->conversions["resized"] += resized;
  }
  return set;
}

absl::Status LoadSegmentationSite(const std::string& dir, const SiteDataOptions& options,
                                  SiteDataset& site, bool& has_val) {
  const fs::path root(dir);
  std::error_code ec;
  const bool split_folders = fs::is_directory(root / "train", ec);
  has_val = split_folders && fs::is_directory(root / "val", ec);
  auto load = [&](const fs::path& folder, ImageSet& set) -> absl::Status {
    ASSIGN_OR_RETURN(
        set, LoadSegmentationFolder(folder.string(), options.height, options.width,
                                    options.channels, options.first_frame_only, &site.report));
    if (!options.with_masks) set.masks.clear();
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(load(split_folders ? root / "train" : root, site.train));
  if (has_val) RETURN_IF_ERROR(load(root / "val", site.val));
  return absl::OkStatus();
}

absl::StatusOr<ImageSet> LoadSegmentationSplit(const std::string& dir, const std::string& split,
                                               const SiteDataOptions& options,
                                               DataLoadReport& report) {
  const fs::path root(dir);
  fs::path folder = root / split;
  std::error_code ec;
  if (!fs::is_directory(folder / "images", ec)) {
    if (split != "train" || !fs::is_directory(root / "images", ec)) {
      return absl::NotFoundError(
          absl::StrCat("segmentation folder ", dir, " has no ", split, "/images/"));
    }
    folder = root;
  }
  ASSIGN_OR_RETURN(ImageSet images,
                   LoadSegmentationFolder(folder.string(), options.height, options.width,
                                          options.channels, options.first_frame_only, &report));
  if (!options.with_masks) images.masks.clear();
  return images;
}

absl::Status MasksUnavailableError(const std::string& path) {
  return absl::InvalidArgumentError(absl::StrCat(
      "data ", path,
      " has no masks: segmentation needs an .npz with <split>_masks or a folder with images/ and "
      "masks/ (docs/data.md)"));
}

absl::Status ReadNpzMasks(const NpyArray& masks, const std::string& path, const std::string& member,
                          bool fill_labels, ImageSet& set) {
  const std::string what = absl::StrCat("npz ", path, " member '", member, "'");
  if (masks.dtype.size() != 3 || masks.dtype[1] != 'u' || masks.dtype[2] != '1') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has dtype ", masks.dtype, "; masks must be uint8 (|u1)"));
  }
  const std::vector<int64_t> expected = {set.size(), set.height, set.width};
  std::vector<int64_t> shape = masks.shape;
  if (shape.size() == 4 && shape[3] == 1) shape.pop_back();
  if (shape != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has shape (", absl::StrJoin(masks.shape, ", "), ") but its images are (",
        absl::StrJoin(expected, ", "), "); masks must be (N, H, W) or (N, H, W, 1)"));
  }
  set.masks.resize(masks.data.size());
  std::transform(masks.data.begin(), masks.data.end(), set.masks.begin(),
                 [](char v) { return static_cast<uint8_t>(v != 0 ? 1 : 0); });
  if (fill_labels) {
    const int64_t mask_bytes = set.MaskBytes();
    for (int64_t row = 0; row < set.size(); ++row) {
      set.labels[row] = LabelOfMask(set.masks.data() + row * mask_bytes, mask_bytes);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<NpyArray> MasksToNpy(const ImageSet& images) {
  const uint64_t expected = static_cast<uint64_t>(images.size()) * images.MaskBytes();
  if (images.masks.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image set of ", images.size(), " images of ", images.height, "x", images.width, " needs ",
        expected, " mask bytes but has ", images.masks.size()));
  }
  NpyArray array;
  array.dtype = "|u1";
  array.shape = {images.size(), images.height, images.width};
  array.data.assign(images.masks.begin(), images.masks.end());
  return array;
}

}  // namespace fedmi
