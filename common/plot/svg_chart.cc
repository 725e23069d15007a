#include "common/plot/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedmi {
namespace {

constexpr double kTitleHeight = 18;
constexpr double kLegendHeight = 16;
constexpr double kLeftMargin = 44;
constexpr double kRightMargin = 12;
constexpr double kTickLabelHeight = 16;
constexpr double kXLabelHeight = 14;
// About this many grid lines: one per 30 pixels of a dashboard chart.
constexpr int kYTicks = 6;

std::string Color(Rgb rgb) { return absl::StrFormat("#%02x%02x%02x", rgb.r, rgb.g, rgb.b); }

std::string Px(double value) { return absl::StrFormat("%.1f", value); }

// Decimals that tell ticks `step` apart, and no more.
int DecimalsFor(double step) {
  if (!(step > 0) || step >= 1) return 0;
  return std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
}

std::string FormatNumber(double value, int decimals) {
  if (std::fabs(value) < 1e-12) value = 0;  // no "-0.0"
  return absl::StrFormat("%.*f", decimals, value);
}

struct Range {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    if (!std::isfinite(v)) return;
    low = std::min(low, v);
    high = std::max(high, v);
  }
  bool empty() const { return low > high; }
};

bool HasLegend(const std::vector<LineSeries>& series, const SvgChartOptions& options) {
  return options.legend && series.size() > 1;
}

// The y ticks of the frame: NiceTicks of the data, or of the given range
// kept inside it.
std::vector<double> YTicks(const SvgChartFrame& frame) {
  std::vector<double> ticks;
  for (double tick : NiceTicks(frame.y_min, frame.y_max, kYTicks)) {
    if (tick >= frame.y_min - 1e-9 && tick <= frame.y_max + 1e-9) ticks.push_back(tick);
  }
  return ticks;
}

std::vector<double> XTicks(const SvgChartFrame& frame, bool integer_x) {
  std::vector<double> ticks;
  for (double tick : NiceTicks(frame.x_min, frame.x_max, 6, integer_x)) {
    if (tick >= frame.x_min - 1e-9 && tick <= frame.x_max + 1e-9) ticks.push_back(tick);
  }
  return ticks;
}

}  // namespace

std::string EscapeXml(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double SvgChartFrame::X(double x) const {
  return x_max > x_min ? left + (x - x_min) / (x_max - x_min) * width : left + width / 2;
}

double SvgChartFrame::Y(double y) const {
  return y_max > y_min ? top + (y_max - y) / (y_max - y_min) * height : top + height / 2;
}

SvgChartFrame SvgChartFrameFor(const std::vector<LineSeries>& series,
                               const SvgChartOptions& options) {
  SvgChartFrame frame;
  frame.left = kLeftMargin;
  frame.top = (options.title.empty() ? 6 : kTitleHeight + 4) +
              (HasLegend(series, options) ? kLegendHeight : 0);
  frame.width = std::max(10.0, options.width - kLeftMargin - kRightMargin);
  const double bottom = kTickLabelHeight + (options.x_label.empty() ? 0 : kXLabelHeight);
  frame.height = std::max(10.0, options.height - frame.top - bottom);

  Range xs, ys;
  for (const LineSeries& line : series) {
    for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
      if (!std::isfinite(line.y[i])) continue;
      xs.Add(line.x[i]);
      ys.Add(line.y[i]);
      if (i < line.low.size()) ys.Add(line.low[i]);
      if (i < line.high.size()) ys.Add(line.high[i]);
    }
  }
  if (xs.empty()) xs = Range{1, 2};
  if (ys.empty()) ys = Range{0, 1};
  std::vector<double> x_ticks = NiceTicks(xs.low, xs.high, 6, options.integer_x);
  if (xs.low == xs.high && !x_ticks.empty()) {
    frame.x_min = x_ticks.front();
    frame.x_max = x_ticks.back();
  } else {
    // Rounds 1..N span the whole width: no empty margin before round 1.
    frame.x_min = xs.low;
    frame.x_max = xs.high;
  }
  std::vector<double> y_ticks = NiceTicks(ys.low, ys.high, kYTicks);
  frame.y_min = options.y_min.value_or(y_ticks.empty() ? ys.low : y_ticks.front());
  frame.y_max = options.y_max.value_or(y_ticks.empty() ? ys.high : y_ticks.back());
  return frame;
}

std::string RenderSvgLineChart(const std::vector<LineSeries>& series,
                               const SvgChartOptions& options) {
  const SvgChartFrame frame = SvgChartFrameFor(series, options);
  std::string svg = absl::StrFormat(
      "<svg class=\"chart\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">",
      options.width, options.height, options.width, options.height, EscapeXml(options.title));
  if (!options.title.empty()) {
    absl::StrAppend(&svg, "<text class=\"chart-title\" x=\"", Px(frame.left), "\" y=\"13\">",
                    EscapeXml(options.title), "</text>");
  }
  if (HasLegend(series, options)) {
    double x = frame.left;
    const double y = (options.title.empty() ? 6 : kTitleHeight + 4) + 6;
    for (size_t i = 0; i < series.size(); ++i) {
      const std::string color = Color(LineChartSeriesColor(series[i], static_cast<int>(i)));
      absl::StrAppend(&svg, "<rect x=\"", Px(x), "\" y=\"", Px(y - 5), "\" width=\"10\" ",
                      "height=\"3\" fill=\"", color, "\"/><text class=\"legend\" x=\"", Px(x + 13),
                      "\" y=\"", Px(y), "\">", EscapeXml(series[i].label), "</text>");
      x += 13 + 6.5 * static_cast<double>(series[i].label.size()) + 12;
    }
  }

  // Grid and y tick labels.
  const std::vector<double> y_ticks = YTicks(frame);
  const int y_decimals =
      options.y_decimals >= 0
          ? options.y_decimals
          : DecimalsFor(y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : frame.y_max - frame.y_min);
  const double right = frame.left + frame.width;
  const double bottom = frame.top + frame.height;
  for (double tick : y_ticks) {
    const std::string y = Px(frame.Y(tick));
    absl::StrAppend(&svg, "<line class=\"grid\" x1=\"", Px(frame.left), "\" y1=\"", y, "\" x2=\"",
                    Px(right), "\" y2=\"", y, "\"/><text class=\"tick\" x=\"", Px(frame.left - 4),
                    "\" y=\"", y, "\" text-anchor=\"end\" dy=\"3\">",
                    FormatNumber(tick, y_decimals), "</text>");
  }
  const std::vector<double> x_ticks = XTicks(frame, options.integer_x);
  const int x_decimals =
      options.integer_x ? 0 : DecimalsFor(x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1);
  for (double tick : x_ticks) {
    absl::StrAppend(&svg, "<text class=\"tick\" x=\"", Px(frame.X(tick)), "\" y=\"",
                    Px(bottom + 12), "\" text-anchor=\"middle\">", FormatNumber(tick, x_decimals),
                    "</text>");
  }
  absl::StrAppend(&svg, "<rect class=\"frame\" x=\"", Px(frame.left), "\" y=\"", Px(frame.top),
                  "\" width=\"", Px(frame.width), "\" height=\"", Px(frame.height),
                  "\" fill=\"none\"/>");
  if (!options.x_label.empty()) {
    absl::StrAppend(&svg, "<text class=\"axis-label\" x=\"", Px(frame.left + frame.width / 2),
                    "\" y=\"", Px(options.height - 3), "\" text-anchor=\"middle\">",
                    EscapeXml(options.x_label), "</text>");
  }

  bool any_point = false;
  for (size_t s = 0; s < series.size(); ++s) {
    const LineSeries& line = series[s];
    const std::string color = Color(LineChartSeriesColor(line, static_cast<int>(s)));
    const std::string label = EscapeXml(line.label);
    std::string points;
    int count = 0;
    std::string markers;
    const auto flush = [&] {
      if (count == 0) return;
      absl::StrAppend(&svg, "<polyline class=\"series\" data-series=\"", label, "\" data-points=\"",
                      count, "\" fill=\"none\" stroke=\"", color, "\" stroke-width=\"2\" points=\"",
                      points, "\"/>");
      points.clear();
      count = 0;
    };
    for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
      if (!std::isfinite(line.y[i]) || !std::isfinite(line.x[i])) {
        flush();
        continue;
      }
      any_point = true;
      const std::string x = Px(frame.X(line.x[i]));
      const std::string y = Px(frame.Y(line.y[i]));
      absl::StrAppend(&points, count == 0 ? "" : " ", x, ",", y);
      ++count;
      absl::StrAppend(&markers, "<circle cx=\"", x, "\" cy=\"", y, "\" r=\"2.5\" fill=\"", color,
                      "\"><title>", label, label.empty() ? "" : " ", "round ",
                      FormatNumber(line.x[i], x_decimals), ": ",
                      FormatNumber(line.y[i], std::max(3, y_decimals)), "</title></circle>");
    }
    flush();
    svg += markers;
  }
  if (!any_point && !options.empty_text.empty()) {
    absl::StrAppend(&svg, "<text class=\"empty\" x=\"", Px(frame.left + frame.width / 2), "\" y=\"",
                    Px(frame.top + frame.height / 2), "\" text-anchor=\"middle\">",
                    EscapeXml(options.empty_text), "</text>");
  }
  svg += "</svg>";
  return svg;
}

std::string RenderSvgSparkline(const std::vector<double>& values, int width, int height,
                               Rgb color) {
  Range ys;
  int last = -1;
  for (size_t i = 0; i < values.size(); ++i) {
    ys.Add(values[i]);
    if (std::isfinite(values[i])) last = static_cast<int>(i);
  }
  if (last < 0) return "";
  const double pad = 3;
  const double span = ys.high - ys.low;
  const auto x_of = [&](size_t i) {
    return values.size() > 1 ? pad + (width - 2 * pad) * static_cast<double>(i) /
                                         static_cast<double>(values.size() - 1)
                             : width / 2.0;
  };
  const auto y_of = [&](double v) {
    return span > 0 ? pad + (ys.high - v) / span * (height - 2 * pad) : height / 2.0;
  };
  std::string points;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    absl::StrAppend(&points, points.empty() ? "" : " ", Px(x_of(i)), ",", Px(y_of(values[i])));
  }
  return absl::StrCat(
      "<svg class=\"sparkline\" width=\"", width, "\" height=\"", height, "\" viewBox=\"0 0 ",
      width, " ", height, "\" aria-hidden=\"true\"><polyline fill=\"none\" stroke=\"", Color(color),
      "\" stroke-width=\"1.5\" points=\"", points, "\"/><circle cx=\"", Px(x_of(last)), "\" cy=\"",
      Px(y_of(values[last])), "\" r=\"2.5\" fill=\"", Color(color), "\"/></svg>");
}

}  // namespace fedmi
