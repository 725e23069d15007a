// The resize behind ResizePadded (image_geometry.h), templated on the sample
// type and a per-sample map to 8 bits, so that a DICOM file's lookup table
// is applied inside the area filter's loop instead of in a separate pass
// over a full-size copy. Internal to fedmi_data.
#ifndef FEDMI_COMMON_DATA_RESIZE_INTERNAL_H_
#define FEDMI_COMMON_DATA_RESIZE_INTERNAL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/data/image_geometry.h"

namespace fedmi::resize_internal {

// `source` rows are `row_stride` samples apart; samples are channel-last
// with `channels` per pixel; map(sample) returns 0..255.
template <typename Sample, typename Map>
void ResizeMapped(const Sample* source, int64_t source_height, int64_t source_width,
                  int64_t row_stride, int64_t channels, Map map, uint8_t* target,
                  int64_t target_height, int64_t target_width) {
  const ImagePlacement place = FitInside(source_height, source_width, target_height, target_width);
  const int64_t c = channels;
  std::memset(target, 0, static_cast<size_t>(target_height * target_width * c));
  auto out = [&](int64_t oy, int64_t ox) {
    return target + ((place.top + oy) * target_width + place.left + ox) * c;
  };
  if (place.height == source_height && place.width == source_width) {
    for (int64_t y = 0; y < source_height; ++y) {
      const Sample* row = source + y * row_stride;
      uint8_t* dst = out(y, 0);
      for (int64_t i = 0; i < source_width * c; ++i) dst[i] = map(row[i]);
    }
    return;
  }
  if (place.height <= source_height && place.width <= source_width) {
    // Area: target pixel (oy, ox) averages source rows [oy*H/h, (oy+1)*H/h)
    // and columns likewise, so every source pixel counts exactly once.
    std::vector<int64_t> x_start(place.width + 1);
    for (int64_t ox = 0; ox <= place.width; ++ox) x_start[ox] = ox * source_width / place.width;
    std::vector<uint32_t> sums(place.width * c);
    for (int64_t oy = 0; oy < place.height; ++oy) {
      const int64_t y_begin = oy * source_height / place.height;
      const int64_t y_end = (oy + 1) * source_height / place.height;
      std::fill(sums.begin(), sums.end(), 0);
      for (int64_t y = y_begin; y < y_end; ++y) {
        const Sample* row = source + y * row_stride;
        if (c == 1) {
          for (int64_t ox = 0; ox < place.width; ++ox) {
            uint32_t sum = 0;
            for (int64_t x = x_start[ox]; x < x_start[ox + 1]; ++x) sum += map(row[x]);
            sums[ox] += sum;
          }
        } else {
          for (int64_t ox = 0; ox < place.width; ++ox) {
            for (int64_t x = x_start[ox]; x < x_start[ox + 1]; ++x) {
              for (int64_t ch = 0; ch < c; ++ch) sums[ox * c + ch] += map(row[x * c + ch]);
            }
          }
        }
      }
      const int64_t rows = y_end - y_begin;
      uint8_t* dst = out(oy, 0);
      for (int64_t ox = 0; ox < place.width; ++ox) {
        const uint32_t area = static_cast<uint32_t>(rows * (x_start[ox + 1] - x_start[ox]));
        for (int64_t ch = 0; ch < c; ++ch) {
          dst[ox * c + ch] = static_cast<uint8_t>((sums[ox * c + ch] + area / 2) / area);
        }
      }
    }
    return;
  }
  // Bilinear with pixel centres at +0.5, edges clamped.
  auto coordinate = [](int64_t o, int64_t source_size, int64_t placed_size, int64_t& lo,
                       int64_t& hi, float& weight) {
    float f = (static_cast<float>(o) + 0.5f) * static_cast<float>(source_size) /
                  static_cast<float>(placed_size) -
              0.5f;
    f = std::clamp(f, 0.0f, static_cast<float>(source_size - 1));
    lo = static_cast<int64_t>(f);
    hi = std::min(lo + 1, source_size - 1);
    weight = f - static_cast<float>(lo);
  };
  for (int64_t oy = 0; oy < place.height; ++oy) {
    int64_t y0, y1;
    float wy;
    coordinate(oy, source_height, place.height, y0, y1, wy);
    const Sample* row0 = source + y0 * row_stride;
    const Sample* row1 = source + y1 * row_stride;
    uint8_t* dst = out(oy, 0);
    for (int64_t ox = 0; ox < place.width; ++ox) {
      int64_t x0, x1;
      float wx;
      coordinate(ox, source_width, place.width, x0, x1, wx);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float top = (1 - wx) * map(row0[x0 * c + ch]) + wx * map(row0[x1 * c + ch]);
        const float bottom = (1 - wx) * map(row1[x0 * c + ch]) + wx * map(row1[x1 * c + ch]);
        const float v = (1 - wy) * top + wy * bottom;
        dst[ox * c + ch] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
}

}  // namespace fedmi::resize_internal

#endif  // FEDMI_COMMON_DATA_RESIZE_INTERNAL_H_
