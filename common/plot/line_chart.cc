#include "common/plot/line_chart.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "absl/strings/str_format.h"

namespace fedmi {
namespace {

constexpr Rgb kGridColor{228, 228, 228};
constexpr Rgb kTextColor{20, 20, 20};
constexpr int kTextScale = 2;
constexpr int kTickLength = 6;
constexpr int kMaxTicks = 6;
constexpr int kLineThickness = 2;
constexpr int kMarkerSize = 7;
constexpr double kBandAlpha = 0.2;
constexpr int kDashOn = 8;
constexpr int kDashOff = 6;
// The plot's margins: y tick labels on the left, title and y label above,
// x tick labels and x label below, the legend in a column on the right.
constexpr int kLeftMargin = 90;
constexpr int kTopMargin = 60;
constexpr int kBottomMargin = 80;
constexpr int kLegendGap = 24;
constexpr int kRightMargin = 30;

void DrawCentered(Canvas& canvas, int center_x, int y, const std::string& text) {
  canvas.DrawText(center_x - Canvas::TextWidth(text, kTextScale) / 2, y, text, kTextColor,
                  kTextScale);
}

void DrawRightAligned(Canvas& canvas, int right_x, int y, const std::string& text) {
  canvas.DrawText(right_x - Canvas::TextWidth(text, kTextScale), y, text, kTextColor, kTextScale);
}

double TickStep(const std::vector<double>& ticks) {
  return ticks.size() >= 2 ? ticks[1] - ticks[0] : 1;
}

// Enough decimals to tell neighbouring ticks apart: none for a step of 1 or
// more, two for a step of 0.05.
std::string TickLabel(double value, double step) {
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return absl::StrFormat("%.*f", decimals, value);
}

// Every finite value a series draws, to fit the y axis to.
void ExtendRange(const std::vector<double>& values, double* low, double* high) {
  for (double value : values) {
    if (!std::isfinite(value)) continue;
    *low = std::min(*low, value);
    *high = std::max(*high, value);
  }
}

std::vector<double> TicksWithin(const std::vector<double>& ticks, double low, double high) {
  std::vector<double> within;
  const double slack = (high - low) * 1e-9;
  std::copy_if(ticks.begin(), ticks.end(), std::back_inserter(within),
               [&](double t) { return t >= low - slack && t <= high + slack; });
  return within;
}

void DrawAxes(Canvas& canvas, const LineChartFrame& frame, const std::vector<double>& x_ticks,
              const std::vector<double>& y_ticks) {
  const int half_text = Canvas::TextHeight(kTextScale) / 2;
  const double x_step = TickStep(x_ticks);
  for (double x : TicksWithin(x_ticks, frame.x_min, frame.x_max)) {
    const int px = frame.X(x);
    canvas.DrawLine(px, frame.top, px, frame.bottom(), kGridColor);
    canvas.DrawLine(px, frame.bottom(), px, frame.bottom() + kTickLength, kBlack);
    DrawCentered(canvas, px, frame.bottom() + kTickLength + 4, TickLabel(x, x_step));
  }
  const double y_step = TickStep(y_ticks);
  for (double y : TicksWithin(y_ticks, frame.y_min, frame.y_max)) {
    const int py = frame.Y(y);
    canvas.DrawLine(frame.left, py, frame.right(), py, kGridColor);
    canvas.DrawLine(frame.left - kTickLength, py, frame.left, py, kBlack);
    DrawRightAligned(canvas, frame.left - kTickLength - 4, py - half_text, TickLabel(y, y_step));
  }
}

// The band is shaded column by column, each column once, so that the
// translucent colour is the same everywhere in it.
void DrawBand(Canvas& canvas, const LineChartFrame& frame, const LineSeries& series, Rgb color) {
  if (series.low.size() != series.x.size() || series.high.size() != series.x.size()) return;
  for (size_t i = 0; i + 1 < series.x.size(); ++i) {
    const double values[] = {series.low[i], series.high[i], series.low[i + 1], series.high[i + 1]};
    if (!std::all_of(std::begin(values), std::end(values),
                     [](double v) { return std::isfinite(v); })) {
      continue;
    }
    const int x0 = frame.X(series.x[i]);
    const int x1 = frame.X(series.x[i + 1]);
    const bool last = i + 2 == series.x.size() || !std::isfinite(series.low[i + 2]) ||
                      !std::isfinite(series.high[i + 2]);
    for (int px = x0; px < x1 + (last ? 1 : 0); ++px) {
      const double t = x1 == x0 ? 0 : static_cast<double>(px - x0) / (x1 - x0);
      const double low = series.low[i] + t * (series.low[i + 1] - series.low[i]);
      const double high = series.high[i] + t * (series.high[i + 1] - series.high[i]);
      canvas.FillRect(px, frame.Y(high), px + 1, frame.Y(low) + 1, color, kBandAlpha);
    }
  }
}

void DrawSeries(Canvas& canvas, const LineChartFrame& frame, const LineSeries& series, Rgb color) {
  const size_t points = std::min(series.x.size(), series.y.size());
  for (size_t i = 0; i + 1 < points; ++i) {
    if (!std::isfinite(series.y[i]) || !std::isfinite(series.y[i + 1])) continue;
    canvas.DrawLine(frame.X(series.x[i]), frame.Y(series.y[i]), frame.X(series.x[i + 1]),
                    frame.Y(series.y[i + 1]), color, kLineThickness);
  }
  const int half = kMarkerSize / 2;
  for (size_t i = 0; i < points; ++i) {
    if (!std::isfinite(series.y[i])) continue;
    const int px = frame.X(series.x[i]);
    const int py = frame.Y(series.y[i]);
    canvas.FillRect(px - half, py - half, px - half + kMarkerSize, py - half + kMarkerSize, color);
  }
}

void DrawReference(Canvas& canvas, const LineChartFrame& frame, double y,
                   const std::string& label) {
  if (!std::isfinite(y) || y < frame.y_min || y > frame.y_max) return;
  const int py = frame.Y(y);
  for (int px = frame.left; px <= frame.right(); px += kDashOn + kDashOff) {
    canvas.DrawLine(px, py, std::min(px + kDashOn - 1, frame.right()), py,
                    kLineChartReferenceColor);
  }
  if (label.empty()) return;
  // Above the line at the left, unless that would leave the plot: curves
  // that rise towards a target (AUC per round) leave that corner free.
  const int text_height = Canvas::TextHeight(kTextScale);
  const int text_y = py - text_height - 4 >= frame.top ? py - text_height - 4 : py + 5;
  canvas.DrawText(frame.left + 6, text_y, label, kLineChartReferenceColor, kTextScale);
}

}  // namespace

int LineChartFrame::X(double x) const {
  const double span = x_max > x_min ? x_max - x_min : 1;
  return left + static_cast<int>(std::lround((x - x_min) / span * width));
}

int LineChartFrame::Y(double y) const {
  const double span = y_max > y_min ? y_max - y_min : 1;
  return top + height - static_cast<int>(std::lround((y - y_min) / span * height));
}

std::vector<double> NiceTicks(double low, double high, int max_ticks, bool integer) {
  if (!std::isfinite(low) || !std::isfinite(high) || max_ticks < 2) return {};
  if (low > high) std::swap(low, high);
  // Values a rounding error apart are one value: a step that small puts
  // low / step past 2^53, where the loop's k += 1 stops moving.
  if (high - low <= 1e-9 * std::max(std::abs(low), std::abs(high))) high = low;
  double raw = (high - low) / (max_ticks - 1);
  if (raw == 0) raw = low != 0 ? std::abs(low) * 0.1 : 1;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
  if (integer) step = std::max(1.0, std::round(step));
  // The small slack keeps a bound that is a multiple of the step (up to
  // rounding) from gaining a tick beyond it.
  double first = std::floor(low / step + 1e-9);
  double last = std::ceil(high / step - 1e-9);
  if (first == last) {
    first -= 1;
    last += 1;
  }
  std::vector<double> ticks;
  for (double k = first; k <= last; k += 1) ticks.push_back(k * step);
  return ticks;
}

LineChartFrame LineChartFrameFor(const std::vector<LineSeries>& series,
                                 const LineChartOptions& options) {
  LineChartFrame frame;
  frame.left = kLeftMargin;
  frame.top = kTopMargin;
  frame.width =
      std::max(1, options.width - kLeftMargin - kLegendGap - options.legend_width - kRightMargin);
  frame.height = std::max(1, options.height - kTopMargin - kBottomMargin);

  double x_low = INFINITY, x_high = -INFINITY, y_low = INFINITY, y_high = -INFINITY;
  for (const LineSeries& s : series) {
    ExtendRange(s.x, &x_low, &x_high);
    ExtendRange(s.y, &y_low, &y_high);
    ExtendRange(s.low, &y_low, &y_high);
    ExtendRange(s.high, &y_low, &y_high);
  }
  if (options.reference_y.has_value()) ExtendRange({*options.reference_y}, &y_low, &y_high);
  if (x_low > x_high) x_low = 0, x_high = 1;
  if (y_low > y_high) y_low = 0, y_high = 1;
  const std::vector<double> x_ticks = NiceTicks(x_low, x_high, kMaxTicks, options.integer_x);
  // Lines from the first point to the last, without a margin of empty
  // ticks, unless there is only one x.
  frame.x_min = x_low < x_high ? x_low : x_ticks.front();
  frame.x_max = x_low < x_high ? x_high : x_ticks.back();
  const std::vector<double> y_ticks = NiceTicks(y_low, y_high, kMaxTicks);
  frame.y_min = options.y_min.value_or(y_ticks.front());
  frame.y_max = options.y_max.value_or(y_ticks.back());
  return frame;
}

LegendSwatch LineChartLegendSwatch(const LineChartOptions& options, int index) {
  LineChartFrame frame = LineChartFrameFor({}, options);
  return {frame.right() + kLegendGap,
          frame.top + 4 + index * (Canvas::TextHeight(kTextScale) + 12)};
}

int LineChartLegendWidth(const std::vector<LineSeries>& series) {
  int widest = 0;
  for (const LineSeries& s : series)
    widest = std::max(widest, Canvas::TextWidth(s.label, kTextScale));
  // The swatch, the gap after it, and a little air before the margin.
  return Canvas::TextHeight(kTextScale) + 8 + widest + 8;
}

Rgb LineChartSeriesColor(const LineSeries& series, int index) {
  constexpr int kColors = static_cast<int>(std::size(kLineChartPalette));
  return series.color.value_or(kLineChartPalette[index % kColors]);
}

Canvas RenderLineChart(const std::vector<LineSeries>& series, const LineChartOptions& options) {
  Canvas canvas(options.width, options.height, kWhite);
  const LineChartFrame frame = LineChartFrameFor(series, options);
  DrawCentered(canvas, options.width / 2, 14, options.title);
  canvas.DrawText(frame.left, 38, options.y_label, kTextColor, kTextScale);

  DrawAxes(canvas, frame, NiceTicks(frame.x_min, frame.x_max, kMaxTicks, options.integer_x),
           NiceTicks(frame.y_min, frame.y_max, kMaxTicks));
  for (size_t i = 0; i < series.size(); ++i) {
    DrawBand(canvas, frame, series[i], LineChartSeriesColor(series[i], static_cast<int>(i)));
  }
  if (options.reference_y.has_value()) {
    DrawReference(canvas, frame, *options.reference_y, options.reference_label);
  }
  // Markers on the first and last x sit on the frame, so they go over it.
  canvas.StrokeRect(frame.left, frame.top, frame.right() + 1, frame.bottom() + 1, kBlack);
  for (size_t i = 0; i < series.size(); ++i) {
    DrawSeries(canvas, frame, series[i], LineChartSeriesColor(series[i], static_cast<int>(i)));
  }
  DrawCentered(canvas, frame.left + frame.width / 2,
               frame.bottom() + kTickLength + 4 + Canvas::TextHeight(kTextScale) + 14,
               options.x_label);

  const int box = Canvas::TextHeight(kTextScale);
  for (size_t i = 0; i < series.size(); ++i) {
    const LegendSwatch swatch = LineChartLegendSwatch(options, static_cast<int>(i));
    canvas.FillRect(swatch.x, swatch.y, swatch.x + box, swatch.y + box,
                    LineChartSeriesColor(series[i], static_cast<int>(i)));
    canvas.DrawText(swatch.x + box + 8, swatch.y, series[i].label, kTextColor, kTextScale);
  }
  return canvas;
}

absl::Status WriteLineChart(const std::vector<LineSeries>& series, const LineChartOptions& options,
                            const std::string& path, Env& env) {
  return RenderLineChart(series, options).SavePng(path, env);
}

}  // namespace fedmi
