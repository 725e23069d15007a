// Helpers shared by the image-folder loaders (image_data.cc,
// unlabelled_data.cc); not part of fedmi_data's interface.
#ifndef FEDMI_COMMON_DATA_IMAGE_FILES_INTERNAL_H_
#define FEDMI_COMMON_DATA_IMAGE_FILES_INTERNAL_H_

#include <cstdint>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

// The .png/.jpg/.jpeg files directly in `dir`, in byte-wise name order.
// Internal naming `dir` when it cannot be listed.
absl::StatusOr<std::vector<std::filesystem::path>> SortedImageFiles(
    const std::filesystem::path& dir);

// Decodes `file` to `channels` (1 grey, 3 RGB) and appends it fitted to
// height x width to `pixels`. InvalidArgument "cannot decode image ...".
absl::Status AppendImage(const std::filesystem::path& file, int64_t height, int64_t width,
                         int64_t channels, std::vector<uint8_t>& pixels);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_IMAGE_FILES_INTERNAL_H_
