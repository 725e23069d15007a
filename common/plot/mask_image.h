// Segmentation masks as pictures: a mask on its own (white foreground on
// black) and an image with mask outlines drawn over it, saved as PNG
// through Env (Canvas::SavePng: all of it or nothing). For `fedmi model
// predict` of segmentation models and for looking at data.
//
// An outline is the mask's surface: its foreground pixels with a
// background 4-neighbour (outside the image counts as background), the
// pixels HD95 measures (common/evaluation/segmentation_metrics.h).
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_PLOT_MASK_IMAGE_H_
#define FEDMI_COMMON_PLOT_MASK_IMAGE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/plot/canvas.h"

namespace fedmi {

struct MaskOverlayOptions {
  // Each image pixel becomes a scale x scale block (small inputs such as
  // 64x64 are hard to see otherwise). 1..64.
  int scale = 1;
  Rgb outline{255, 0, 0};  // The mask's outline.
  // Translucent fill of the mask's foreground, 0 (none) .. 1 (opaque).
  double fill_alpha = 0.0;
  // Optional second mask (same size), e.g. the ground truth, outlined in
  // `truth_outline` under the first. Not owned; null for none.
  const uint8_t* truth = nullptr;
  Rgb truth_outline{0, 255, 0};
};

// height x width mask (nonzero = foreground) as white on black, each pixel
// a scale x scale block. InvalidArgument for sizes below 1, a scale outside
// 1..64 or a picture above 32768 pixels a side.
absl::StatusOr<Canvas> MaskCanvas(const uint8_t* mask, int64_t height, int64_t width,
                                  int scale = 1);

// The channel-last image (channels 1 grey or 3 RGB, height x width) with
// the outline (and optional fill) of `mask` drawn over it as `options`
// say. MaskCanvas's errors, and InvalidArgument for other channel counts.
absl::StatusOr<Canvas> MaskOverlayCanvas(const uint8_t* image, int64_t height, int64_t width,
                                         int64_t channels, const uint8_t* mask,
                                         const MaskOverlayOptions& options = {});

// MaskCanvas / MaskOverlayCanvas saved to `path` as PNG through `env`.
absl::Status SaveMaskPng(const uint8_t* mask, int64_t height, int64_t width,
                         const std::string& path, int scale = 1, Env& env = *Env::Default());
absl::Status SaveMaskOverlayPng(const uint8_t* image, int64_t height, int64_t width,
                                int64_t channels, const uint8_t* mask, const std::string& path,
                                const MaskOverlayOptions& options = {}, Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_PLOT_MASK_IMAGE_H_
