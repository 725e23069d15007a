#include "common/data/dataset.h"

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

}  // namespace fedmi
