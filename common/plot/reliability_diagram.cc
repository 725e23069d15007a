#include "common/plot/reliability_diagram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedmi {
namespace {

constexpr Rgb kGridColor{225, 225, 225};
constexpr Rgb kTextColor{20, 20, 20};
constexpr int kTextScale = 2;
// The gap between predicted and observed is shaded over the bar or the
// background, so both directions of miscalibration stay visible.
constexpr double kGapAlpha = 0.35;
constexpr int kTickLength = 6;
// The strip of per-bin counts under the main plot.
constexpr int kCountsGap = 16;
constexpr int kCountsHeight = 60;

void DrawCentered(Canvas& canvas, int center_x, int y, absl::string_view text, int scale = 2) {
  canvas.DrawText(center_x - Canvas::TextWidth(text, scale) / 2, y, text, kTextColor, scale);
}

void DrawRightAligned(Canvas& canvas, int right_x, int y, absl::string_view text) {
  canvas.DrawText(right_x - Canvas::TextWidth(text, kTextScale), y, text, kTextColor, kTextScale);
}

void DrawAxes(Canvas& canvas, const ReliabilityFrame& frame, int counts_bottom) {
  const int right = frame.X(1);
  const int bottom = frame.Y(0);
  const int half_text = Canvas::TextHeight(kTextScale) / 2;
  for (int i = 0; i <= 5; ++i) {
    const double value = i / 5.0;
    const std::string label = absl::StrFormat("%.1f", value);
    if (i > 0 && i < 5) {
      canvas.DrawLine(frame.X(value), frame.top, frame.X(value), bottom, kGridColor);
      canvas.DrawLine(frame.left, frame.Y(value), right, frame.Y(value), kGridColor);
    }
    // x ticks under the counts strip, which shares the x axis.
    canvas.DrawLine(frame.X(value), counts_bottom, frame.X(value), counts_bottom + kTickLength,
                    kBlack);
    DrawCentered(canvas, frame.X(value), counts_bottom + kTickLength + 4, label);
    canvas.DrawLine(frame.left - kTickLength, frame.Y(value), frame.left, frame.Y(value), kBlack);
    DrawRightAligned(canvas, frame.left - kTickLength - 4, frame.Y(value) - half_text, label);
  }
}

void DrawLegend(Canvas& canvas, const ReliabilityFrame& frame, double ece, double brier,
                int64_t examples) {
  const int x = frame.left + 14;
  const int line = Canvas::TextHeight(kTextScale) + 8;
  int y = frame.top + 14;
  canvas.FillRect(x - 8, y - 8, x + 276, y + 6 * line, kWhite);
  canvas.StrokeRect(x - 8, y - 8, x + 276, y + 6 * line, kGridColor);
  canvas.DrawText(x, y, absl::StrFormat("ECE    %.4f", ece), kTextColor, kTextScale);
  y += line;
  canvas.DrawText(x, y, absl::StrFormat("BRIER  %.4f", brier), kTextColor, kTextScale);
  y += line;
  canvas.DrawText(x, y, absl::StrCat("N      ", examples), kTextColor, kTextScale);
  y += line;
  // The swatches are drawn the way the bars are, so they match exactly.
  const int box = Canvas::TextHeight(kTextScale);
  canvas.FillRect(x, y, x + box, y + box, kObservedBarColor);
  canvas.DrawText(x + box + 8, y, "OBSERVED", kTextColor, kTextScale);
  y += line;
  canvas.FillRect(x, y, x + box, y + box, kGapColor, kGapAlpha);
  canvas.DrawText(x + box + 8, y, "PREDICTED > OBSERVED", kTextColor, kTextScale);
  y += line;
  canvas.FillRect(x, y, x + box, y + box, kObservedBarColor);
  canvas.FillRect(x, y, x + box, y + box, kGapColor, kGapAlpha);
  canvas.DrawText(x + box + 8, y, "PREDICTED < OBSERVED", kTextColor, kTextScale);
}

}  // namespace

int ReliabilityFrame::X(double p) const {
  return left + static_cast<int>(std::lround(std::clamp(p, 0.0, 1.0) * size));
}

int ReliabilityFrame::Y(double frequency) const {
  return top + size - static_cast<int>(std::lround(std::clamp(frequency, 0.0, 1.0) * size));
}

Canvas RenderReliabilityDiagram(const std::vector<ReliabilityBin>& bins, double ece, double brier,
                                absl::string_view title) {
  Canvas canvas(kReliabilityDiagramWidth, kReliabilityDiagramHeight, kWhite);
  const ReliabilityFrame frame;
  const int bottom = frame.Y(0);
  const int right = frame.X(1);
  const int counts_top = bottom + kCountsGap;
  const int counts_bottom = counts_top + kCountsHeight;

  DrawCentered(canvas, kReliabilityDiagramWidth / 2, 12, title);
  canvas.DrawText(frame.left, 38, "OBSERVED FREQUENCY OF CLASS 1", kTextColor, kTextScale);
  DrawAxes(canvas, frame, counts_bottom);

  int64_t examples = 0;
  int64_t most = 0;
  for (const ReliabilityBin& bin : bins) {
    examples += bin.count;
    most = std::max(most, bin.count);
  }
  for (const ReliabilityBin& bin : bins) {
    if (bin.count == 0) continue;
    // One pixel of white either side separates neighbouring bars.
    const int x0 = frame.X(bin.lower) + 1;
    const int x1 = frame.X(bin.upper) - 1;
    canvas.FillRect(x0, frame.Y(bin.observed_frequency), x1, bottom, kObservedBarColor);
    canvas.FillRect(x0, frame.Y(bin.observed_frequency), x1, frame.Y(bin.mean_predicted), kGapColor,
                    kGapAlpha);
    const int height = static_cast<int>(std::lround(
        static_cast<double>(bin.count) / static_cast<double>(most) * (kCountsHeight - 2)));
    canvas.FillRect(x0, counts_bottom - 1 - std::max(height, 1), x1, counts_bottom - 1,
                    kCountBarColor);
  }
  canvas.DrawLine(frame.X(0), frame.Y(0), frame.X(1), frame.Y(1), kDiagonalColor, 2);
  canvas.StrokeRect(frame.left, frame.top, right + 1, bottom + 1, kBlack);
  canvas.StrokeRect(frame.left, counts_top, right + 1, counts_bottom, kBlack);
  const int half_text = Canvas::TextHeight(kTextScale) / 2;
  DrawRightAligned(canvas, frame.left - kTickLength - 4, counts_top + 2, absl::StrCat(most));
  DrawRightAligned(canvas, frame.left - kTickLength - 4, counts_bottom - 2 * half_text - 2, "N");
  DrawLegend(canvas, frame, ece, brier, examples);
  DrawCentered(canvas, kReliabilityDiagramWidth / 2, kReliabilityDiagramHeight - 24,
               "PREDICTED P(CLASS 1)");
  return canvas;
}

absl::Status WriteReliabilityDiagram(const std::vector<ReliabilityBin>& bins, double ece,
                                     double brier, absl::string_view title, const std::string& path,
                                     Env& env) {
  return RenderReliabilityDiagram(bins, ece, brier, title).SavePng(path, env);
}

}  // namespace fedmi
