#include "common/plot/heatmap_overlay.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

constexpr int kCaptionPadding = 4;
constexpr int kSheetGap = 4;

uint8_t ToByte(double value) {
  return static_cast<uint8_t>(std::clamp(std::lround(value), 0L, 255L));
}

// Samples `at(row, col)` of a rows x cols grid bilinearly at the centre of
// output pixel (y, x) of a side x side raster (pixel centres aligned, edges
// replicated).
template <typename At>
double Bilinear(const At& at, int64_t rows, int64_t cols, int side, int y, int x) {
  const double v = std::clamp((y + 0.5) * rows / side - 0.5, 0.0, rows - 1.0);
  const double u = std::clamp((x + 0.5) * cols / side - 0.5, 0.0, cols - 1.0);
  const int64_t r0 = static_cast<int64_t>(v), c0 = static_cast<int64_t>(u);
  const int64_t r1 = std::min(r0 + 1, rows - 1), c1 = std::min(c0 + 1, cols - 1);
  const double fr = v - r0, fc = u - c0;
  return (1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c1)) +
         fr * ((1 - fc) * at(r1, c0) + fc * at(r1, c1));
}

}  // namespace

Rgb JetColor(double value) {
  const double v = std::clamp(value, 0.0, 1.0);
  // Piecewise linear, as matplotlib's "jet": each channel a tent.
  auto channel = [v](double centre) {
    return ToByte(255 * std::clamp(1.5 - std::abs(4 * v - centre), 0.0, 1.0));
  };
  return Rgb{channel(3), channel(2), channel(1)};
}

absl::StatusOr<Canvas> DrawHeatmapOverlay(const uint8_t* pixels, int64_t height, int64_t width,
                                          int64_t channels, const std::vector<float>& heatmap,
                                          const std::optional<HeatmapPeak>& peak,
                                          const std::vector<std::string>& caption,
                                          const HeatmapOverlayOptions& options) {
  if (height < 1 || width < 1 || channels < 1 || options.side < 1 ||
      heatmap.size() != static_cast<size_t>(height * width)) {
    return absl::InvalidArgumentError(
        absl::StrCat("heat-map overlay needs a ", height, " x ", width, " heat-map for a ", height,
                     " x ", width, " x ", channels, " image; got ", heatmap.size(), " values"));
  }
  const int side = options.side;
  const int line_height = Canvas::TextHeight(options.caption_scale) + kCaptionPadding;
  const int caption_height =
      caption.empty() ? 0 : static_cast<int>(caption.size()) * line_height + kCaptionPadding;
  Canvas canvas(side, side + caption_height);
  auto grey = [&](int64_t r, int64_t c) {
    const uint8_t* p = pixels + (r * width + c) * channels;
    double sum = 0;
    for (int64_t k = 0; k < channels; ++k) sum += p[k];
    return sum / static_cast<double>(channels);
  };
  auto heat = [&](int64_t r, int64_t c) { return static_cast<double>(heatmap[r * width + c]); };
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const uint8_t g = ToByte(Bilinear(grey, height, width, side, y, x));
      canvas.SetPixel(x, y, Rgb{g, g, g});
      const double h = std::clamp(Bilinear(heat, height, width, side, y, x), 0.0, 1.0);
      canvas.BlendPixel(x, y, JetColor(h), options.alpha * std::pow(h, options.fade));
    }
  }
  if (peak.has_value()) {
    // At the centre of its input pixel.
    const int px = static_cast<int>((peak->col + 0.5) * side / width);
    const int py = static_cast<int>((peak->row + 0.5) * side / height);
    const int arm = std::max(3, side / 40);
    canvas.DrawLine(px - arm, py, px + arm, py, kBlack, 3);
    canvas.DrawLine(px, py - arm, px, py + arm, kBlack, 3);
    canvas.DrawLine(px - arm, py, px + arm, py, kWhite);
    canvas.DrawLine(px, py - arm, px, py + arm, kWhite);
  }
  for (size_t i = 0; i < caption.size(); ++i) {
    canvas.DrawText(kCaptionPadding, side + kCaptionPadding + static_cast<int>(i) * line_height,
                    caption[i], kBlack, options.caption_scale);
  }
  return canvas;
}

Canvas DrawContactSheet(const std::vector<Canvas>& tiles, int columns) {
  if (tiles.empty()) return Canvas(1, 1);
  columns = std::clamp(columns, 1, static_cast<int>(tiles.size()));
  const int rows = (static_cast<int>(tiles.size()) + columns - 1) / columns;
  int cell_width = 0, cell_height = 0;
  for (const Canvas& tile : tiles) {
    cell_width = std::max(cell_width, tile.width());
    cell_height = std::max(cell_height, tile.height());
  }
  Canvas sheet(kSheetGap + columns * (cell_width + kSheetGap),
               kSheetGap + rows * (cell_height + kSheetGap));
  for (size_t i = 0; i < tiles.size(); ++i) {
    const int left = kSheetGap + static_cast<int>(i) % columns * (cell_width + kSheetGap);
    const int top = kSheetGap + static_cast<int>(i) / columns * (cell_height + kSheetGap);
    for (int y = 0; y < tiles[i].height(); ++y) {
      for (int x = 0; x < tiles[i].width(); ++x) {
        sheet.SetPixel(left + x, top + y, tiles[i].Pixel(x, y));
      }
    }
  }
  return sheet;
}

}  // namespace fedmi
