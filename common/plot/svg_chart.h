// Line charts as inline SVG text, for pages fedmi serves itself (the
// coordinator's dashboard): the same LineSeries, palette and "nice" ticks
// as the PNG charts of line_chart.h, drawn as vector markup a browser
// renders with no script, font or file from anywhere else.
//
// Each series is a <polyline class="series"> with data-series (its label)
// and data-points (how many points it has), split where y is NaN, with a
// marker per point whose <title> is its value (a tooltip). Text comes from
// callers' data (site names), so every string is XML-escaped.
//
// Pure functions of their inputs; thread-safe.
#ifndef FEDMI_COMMON_PLOT_SVG_CHART_H_
#define FEDMI_COMMON_PLOT_SVG_CHART_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/plot/line_chart.h"

namespace fedmi {

// & < > " ' as character references: safe in element text and in quoted
// attribute values of XML and HTML alike.
std::string EscapeXml(absl::string_view text);

struct SvgChartOptions {
  int width = 320;
  int height = 200;
  std::string title;    // above the plot
  std::string x_label;  // below the x axis
  // Ticks only at whole numbers (rounds).
  bool integer_x = true;
  // Unset: from the data, widened to whole ticks.
  std::optional<double> y_min;
  std::optional<double> y_max;
  // Tick labels with this many decimals; -1: as the tick step needs.
  int y_decimals = -1;
  // A legend row under the title when there are several series.
  bool legend = true;
  // Shown in the plot area when no series has a finite point.
  std::string empty_text = "no rounds yet";
};

// Where the plot area lies in the SVG and what it spans.
struct SvgChartFrame {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
  double x_min = 0;
  double x_max = 1;
  double y_min = 0;
  double y_max = 1;
  double X(double x) const;
  double Y(double y) const;
};

SvgChartFrame SvgChartFrameFor(const std::vector<LineSeries>& series,
                               const SvgChartOptions& options);

// One <svg> element, `options.width` by `options.height` CSS pixels, for
// inline use in HTML, which puts it in the SVG namespace (no xmlns, so a
// page holds no URL that is not its own).
std::string RenderSvgLineChart(const std::vector<LineSeries>& series,
                               const SvgChartOptions& options);

// A tiny line without axes or text (a table cell's trend): `width` by
// `height` pixels, the last point marked. Empty string for no finite point.
std::string RenderSvgSparkline(const std::vector<double>& values, int width, int height,
                               Rgb color = kLineChartPalette[0]);

}  // namespace fedmi

#endif  // FEDMI_COMMON_PLOT_SVG_CHART_H_
