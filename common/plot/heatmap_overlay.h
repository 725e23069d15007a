// Heat-maps drawn over images, for `fedmi explain`: a greyscale image
// scaled up, a heat-map in the jet colour map blended over it, its peak (if
// it has one) marked with a cross, and a caption below; and contact sheets that lay
// such tiles out in a grid. Pure functions of their inputs; no LibTorch.
#ifndef FEDMI_COMMON_PLOT_HEATMAP_OVERLAY_H_
#define FEDMI_COMMON_PLOT_HEATMAP_OVERLAY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/plot/canvas.h"

namespace fedmi {

// The jet colour map: dark blue at 0, through cyan, yellow, to dark red at
// 1; values outside [0, 1] are clamped.
Rgb JetColor(double value);

// A pixel of the input image, where a heat-map peaks.
struct HeatmapPeak {
  int64_t row = 0;
  int64_t col = 0;
};

struct HeatmapOverlayOptions {
  int side = 224;      // the image is scaled (bilinearly) to side x side
  double alpha = 0.4;  // the heat-map's opacity at its peak
  // The heat-map's opacity is alpha * value^fade: cold regions show the
  // image nearly untouched, so that the anatomy under the map stays visible.
  double fade = 0.5;
  int caption_scale = 2;  // font scale of the caption lines
};

// One tile: `pixels` (height x width x channels, uint8, channel-last; RGB
// is shown as its mean) under `heatmap` (height x width, values in [0, 1]),
// the heat-map's peak (in input pixels) marked with a white cross, no mark
// when `peak` is unset (a map without one, which callers should say in the
// caption), and `caption` lines below in the bitmap font. A line wider than
// the tile is clipped: at caption_scale 2 a 224-pixel tile holds 18
// characters.
// InvalidArgument when a buffer does not match the geometry.
absl::StatusOr<Canvas> DrawHeatmapOverlay(const uint8_t* pixels, int64_t height, int64_t width,
                                          int64_t channels, const std::vector<float>& heatmap,
                                          const std::optional<HeatmapPeak>& peak,
                                          const std::vector<std::string>& caption,
                                          const HeatmapOverlayOptions& options = {});

// `tiles` in rows of `columns` (at least 1), 4 pixels apart, on white; each
// cell as large as the largest tile. A 1x1 canvas for no tiles.
Canvas DrawContactSheet(const std::vector<Canvas>& tiles, int columns);

}  // namespace fedmi

#endif  // FEDMI_COMMON_PLOT_HEATMAP_OVERLAY_H_
