// A line chart of a few series over a shared x axis (e.g. test AUC per
// round for each strategy of `fedmi sim --compare`): one coloured line with
// a marker at each point, an optional translucent band around it (e.g. the
// lowest and highest value over seeds), an optional dashed horizontal
// reference line (a target), ticked and labelled axes with a light grid,
// and a legend to the right of the plot. Drawn on Canvas, saved as PNG.
//
// A NaN y leaves a gap in its line. Text is drawn in Canvas's font, so
// labels come out upper case.
//
// Pure functions of their inputs; thread-safe.
#ifndef FEDMI_COMMON_PLOT_LINE_CHART_H_
#define FEDMI_COMMON_PLOT_LINE_CHART_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/base/env.h"
#include "common/plot/canvas.h"

namespace fedmi {

// Distinct colours for up to sixteen series (a strategies file of several
// strategies under several attacks); series beyond reuse them.
inline constexpr Rgb kLineChartPalette[] = {
    {31, 119, 180},  {214, 39, 40},  {44, 160, 44},   {255, 127, 14},
    {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {23, 190, 207},
    {127, 127, 127}, {188, 189, 34}, {0, 0, 128},     {128, 0, 0},
    {0, 100, 0},     {184, 134, 11}, {0, 128, 128},   {75, 0, 130},
};
inline constexpr Rgb kLineChartReferenceColor{90, 90, 90};

struct LineSeries {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;  // same size as x; NaN: no value there
  // Empty, or the same size as x: a band from low to high is shaded.
  std::vector<double> low;
  std::vector<double> high;
  // Unset: kLineChartPalette by the series' position.
  std::optional<Rgb> color;
};

struct LineChartOptions {
  int width = 900;
  int height = 540;
  std::string title;
  std::string x_label;
  std::string y_label;
  // Ticks only at whole numbers (rounds, epochs).
  bool integer_x = false;
  // Unset: from the data (and the reference), widened to whole ticks.
  std::optional<double> y_min;
  std::optional<double> y_max;
  // A dashed horizontal line, labelled `reference_label`.
  std::optional<double> reference_y;
  std::string reference_label;
  // Pixels for the legend column on the right; LineChartLegendWidth gives
  // what the labels need. The plot area takes the rest of `width`.
  int legend_width = 260;
};

// Where the plot area lies and what it spans, to map data to pixels (tests
// use it to find the lines).
struct LineChartFrame {
  int left = 0;
  int top = 0;
  int width = 0;   // pixels from x_min to x_max
  int height = 0;  // pixels from y_min to y_max
  double x_min = 0;
  double x_max = 1;
  double y_min = 0;
  double y_max = 1;
  int X(double x) const;
  int Y(double y) const;
  int right() const { return left + width; }
  int bottom() const { return top + height; }
};

// The top-left corner of legend entry `index`'s colour swatch (a square of
// Canvas::TextHeight(2) pixels).
struct LegendSwatch {
  int x = 0;
  int y = 0;
};

// "Nice" tick values covering [low, high]: steps of 1, 2 or 5 times a power
// of ten, at most about `max_ticks` of them, from the first multiple of the
// step at or below `low` to the first at or above `high`. Whole steps of at
// least 1 when `integer`. Three ticks around the value when low == high;
// empty for non-finite input or max_ticks < 2.
std::vector<double> NiceTicks(double low, double high, int max_ticks, bool integer = false);

// The frame RenderLineChart uses for `series` and `options`.
LineChartFrame LineChartFrameFor(const std::vector<LineSeries>& series,
                                 const LineChartOptions& options);
LegendSwatch LineChartLegendSwatch(const LineChartOptions& options, int index);
// The legend width that shows every label of `series` whole.
int LineChartLegendWidth(const std::vector<LineSeries>& series);
// The colour series `index` is drawn in.
Rgb LineChartSeriesColor(const LineSeries& series, int index);

Canvas RenderLineChart(const std::vector<LineSeries>& series, const LineChartOptions& options);

// RenderLineChart saved as a PNG at `path` (atomically).
absl::Status WriteLineChart(const std::vector<LineSeries>& series, const LineChartOptions& options,
                            const std::string& path, Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_PLOT_LINE_CHART_H_
