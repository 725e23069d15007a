// The one geometry every data source is brought to: an image is scaled to
// fit inside height x width keeping its aspect ratio, centred, and the rest
// padded with 0. Shrinking averages whole source pixels over each target
// pixel's box (area filter); enlarging is bilinear.
//
// Pure functions of their arguments; thread-safe.
#ifndef FEDMI_COMMON_DATA_IMAGE_GEOMETRY_H_
#define FEDMI_COMMON_DATA_IMAGE_GEOMETRY_H_

#include <cstdint>

namespace fedmi {

// Where a source_height x source_width image lands inside a
// target_height x target_width one: scale = min(target_h / source_h,
// target_w / source_w), each side rounded (at least 1), centred with the
// odd pixel of padding at the bottom/right.
struct ImagePlacement {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
};
ImagePlacement FitInside(int64_t source_height, int64_t source_width, int64_t target_height,
                         int64_t target_width);

// Resizes channel-last `source` (source_height x source_width x channels)
// into `target` (target_height x target_width x channels, overwritten
// entirely) as described above. Same size copies.
void ResizePadded(const uint8_t* source, int64_t source_height, int64_t source_width,
                  int64_t channels, uint8_t* target, int64_t target_height, int64_t target_width);

// The mask counterpart of ResizePadded: the same placement (FitInside), but
// nearest neighbour (target pixel centre mapped into the source) and
// binarised (nonzero -> 1), so a mask pixel stays on its image pixel and
// stays 0/1. Padding is 0 (background).
void ResizeMaskPadded(const uint8_t* source, int64_t source_height, int64_t source_width,
                      uint8_t* target, int64_t target_height, int64_t target_width);

// Converts channel-last pixels from `from_channels` to `to_channels`
// (1 or 3 each): 3 -> 1 is luma 0.299 R + 0.587 G + 0.114 B (rounded),
// 1 -> 3 replicates. `target` holds pixel_count * to_channels bytes and may
// not alias `source` unless the channel counts are equal.
void ConvertChannels(const uint8_t* source, int64_t pixel_count, int64_t from_channels,
                     uint8_t* target, int64_t to_channels);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_IMAGE_GEOMETRY_H_
