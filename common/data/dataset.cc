#include "common/data/dataset.h"

#include "absl/strings/str_format.h"

namespace fedmi {

ImageSet SelectRows(const ImageSet& images, const std::vector<int64_t>& rows) {
  ImageSet subset;
  subset.height = images.height;
  subset.width = images.width;
  subset.channels = images.channels;
  const int64_t image_bytes = images.ImageBytes();
  const int64_t mask_bytes = images.has_masks() ? images.MaskBytes() : 0;
  subset.pixels.reserve(rows.size() * image_bytes);
  subset.masks.reserve(rows.size() * mask_bytes);
  subset.labels.reserve(rows.size());
  for (int64_t row : rows) {
    subset.labels.push_back(images.labels[row]);
    subset.pixels.insert(subset.pixels.end(), images.pixels.begin() + row * image_bytes,
                         images.pixels.begin() + (row + 1) * image_bytes);
    subset.masks.insert(subset.masks.end(), images.masks.begin() + row * mask_bytes,
                        images.masks.begin() + (row + 1) * mask_bytes);
  }
  return subset;
}

std::string ImageId(const ImageSet& images, int64_t row) {
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](uint8_t byte) {
    hash ^= byte;
    hash *= 1099511628211ull;
  };
  for (int64_t side : {images.height, images.width, images.channels}) {
    for (int shift = 0; shift < 64; shift += 8) mix(static_cast<uint8_t>(side >> shift));
  }
  const int64_t bytes = images.ImageBytes();
  const uint8_t* pixel = images.pixels.data() + row * bytes;
  for (int64_t i = 0; i < bytes; ++i) mix(pixel[i]);
  return absl::StrFormat("%016x", hash);
}

}  // namespace fedmi
