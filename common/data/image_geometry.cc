#include "common/data/image_geometry.h"

#include <algorithm>
#include <cmath>

#include "common/data/resize_internal.h"

namespace fedmi {

ImagePlacement FitInside(int64_t source_height, int64_t source_width, int64_t target_height,
                         int64_t target_width) {
  const double scale = std::min(static_cast<double>(target_height) / source_height,
                                static_cast<double>(target_width) / source_width);
  ImagePlacement place;
  place.height = std::clamp<int64_t>(std::llround(source_height * scale), 1, target_height);
  place.width = std::clamp<int64_t>(std::llround(source_width * scale), 1, target_width);
  place.top = (target_height - place.height) / 2;
  place.left = (target_width - place.width) / 2;
  return place;
}

void ResizePadded(const uint8_t* source, int64_t source_height, int64_t source_width,
                  int64_t channels, uint8_t* target, int64_t target_height, int64_t target_width) {
  resize_internal::ResizeMapped(
      source, source_height, source_width, source_width * channels, channels,
      [](uint8_t v) { return v; }, target, target_height, target_width);
}

void ResizeMaskPadded(const uint8_t* source, int64_t source_height, int64_t source_width,
                      uint8_t* target, int64_t target_height, int64_t target_width) {
  const ImagePlacement place = FitInside(source_height, source_width, target_height, target_width);
  std::fill(target, target + target_height * target_width, uint8_t{0});
  for (int64_t oy = 0; oy < place.height; ++oy) {
    // Centre of target row oy, (oy + 0.5) * H / h, floored: exact in integers.
    const int64_t y = (2 * oy + 1) * source_height / (2 * place.height);
    const uint8_t* row = source + y * source_width;
    uint8_t* out = target + (place.top + oy) * target_width + place.left;
    for (int64_t ox = 0; ox < place.width; ++ox) {
      out[ox] = row[(2 * ox + 1) * source_width / (2 * place.width)] != 0 ? 1 : 0;
    }
  }
}

void ConvertChannels(const uint8_t* source, int64_t pixel_count, int64_t from_channels,
                     uint8_t* target, int64_t to_channels) {
  if (from_channels == to_channels) {
    if (source != target) std::copy(source, source + pixel_count * to_channels, target);
    return;
  }
  if (from_channels == 3) {
    for (int64_t i = 0; i < pixel_count; ++i) {
      const uint8_t* p = source + 3 * i;
      // Fixed point: 0.299, 0.587, 0.114 in 1/1000.
      target[i] = static_cast<uint8_t>((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
    }
    return;
  }
  for (int64_t i = 0; i < pixel_count; ++i) {
    target[3 * i] = target[3 * i + 1] = target[3 * i + 2] = source[i];
  }
}

}  // namespace fedmi
