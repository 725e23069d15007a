#include "common/plot/line_chart.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/plot/stb_png.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pointwise;

std::vector<double> Ticks(double low, double high, int max_ticks, bool integer = false) {
  return NiceTicks(low, high, max_ticks, integer);
}

TEST(LineChartTest, NiceTicksAreWholeStepsOfOneTwoOrFive) {
  // Span 0.14 over 5 gaps: 0.028, rounded up to 0.05.
  EXPECT_THAT(Ticks(0.83, 0.97, 6),
              Pointwise(DoubleNear(1e-12), std::vector<double>{0.80, 0.85, 0.90, 0.95, 1.00}));
  EXPECT_THAT(Ticks(0, 1, 6),
              Pointwise(DoubleNear(1e-12), std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  // Rounds: a step of 0.5 becomes 1.
  EXPECT_THAT(Ticks(1, 3, 6, /*integer=*/true), ElementsAre(1, 2, 3));
  EXPECT_THAT(Ticks(1, 50, 6, /*integer=*/true), ElementsAre(0, 10, 20, 30, 40, 50));
  // One value: a tick either side.
  EXPECT_THAT(Ticks(0.9, 0.9, 6), Pointwise(DoubleNear(1e-12), std::vector<double>{0.8, 0.9, 1.0}));
  EXPECT_THAT(Ticks(3, 3, 6, /*integer=*/true), ElementsAre(2, 3, 4));
  EXPECT_THAT(Ticks(NAN, 1, 6), IsEmpty());
  EXPECT_THAT(Ticks(0, 1, 1), IsEmpty());
}

// Two values a rounding error apart (a pooled AUC that repeats, summed in
// another order): a step that small put the tick index past 2^53, where
// k += 1 no longer moves, and the loop filled memory for ever.
TEST(LineChartTest, NiceTicksOfValuesARoundingErrorApartAreThoseOfOneValue) {
  EXPECT_THAT(Ticks(0.7, std::nextafter(0.7, 1.0), 6),
              Pointwise(DoubleNear(1e-12), std::vector<double>{0.6, 0.7, 0.8}));
  EXPECT_THAT(Ticks(1e6, 1e6 + 1e-7, 6),
              Pointwise(DoubleNear(1e-6), std::vector<double>{0.9e6, 1e6, 1.1e6}));
}

TEST(LineChartTest, FrameSpansTheDataAndTheReference) {
  LineChartOptions options;
  options.integer_x = true;
  options.reference_y = 0.95;
  const LineChartFrame frame =
      LineChartFrameFor({{"a", {1, 2, 3}, {0.83, 0.9, 0.93}, {}, {}, std::nullopt}}, options);
  // x: exactly the rounds; y: 0.83..0.95 widened to the ticks 0.80..0.95.
  EXPECT_EQ(frame.x_min, 1);
  EXPECT_EQ(frame.x_max, 3);
  EXPECT_NEAR(frame.y_min, 0.80, 1e-12);
  EXPECT_NEAR(frame.y_max, 0.95, 1e-12);
  // 900 x 540: plot from x 90 over 900 - 90 - 24 - 260 - 30 = 496 pixels,
  // from y 60 over 540 - 60 - 80 = 400 pixels.
  EXPECT_EQ(frame.X(1), 90);
  EXPECT_EQ(frame.X(2), 338);
  EXPECT_EQ(frame.X(3), 586);
  EXPECT_EQ(frame.Y(0.95), 60);
  EXPECT_EQ(frame.Y(0.80), 460);

  // A single round still gets an axis around it.
  const LineChartFrame one = LineChartFrameFor({{"a", {3}, {0.5}, {}, {}, std::nullopt}}, options);
  EXPECT_EQ(one.x_min, 2);
  EXPECT_EQ(one.x_max, 4);
}

// Series 0 flat at 0.5 then up to 0.9, with a band 0.1 either side;
// series 1 at 0.2 and 0.3 with no value in round 2. y from 0 to 1.
struct Drawn {
  LineChartOptions options;
  std::vector<LineSeries> series;
  LineChartFrame frame;
  Canvas canvas{1, 1};
};

Drawn DrawTwoSeries() {
  Drawn drawn;
  drawn.options.integer_x = true;
  drawn.options.y_min = 0;
  drawn.options.y_max = 1;
  drawn.options.reference_y = 0.95;
  drawn.options.reference_label = "target";
  drawn.options.title = "Test AUC per round";
  drawn.series = {
      {"FedAvg", {1, 2, 3}, {0.5, 0.5, 0.9}, {0.4, 0.4, 0.8}, {0.6, 0.6, 1.0}, std::nullopt},
      {"Median", {1, 2, 3}, {0.2, NAN, 0.3}, {}, {}, std::nullopt},
  };
  drawn.frame = LineChartFrameFor(drawn.series, drawn.options);
  drawn.canvas = RenderLineChart(drawn.series, drawn.options);
  return drawn;
}

TEST(LineChartTest, DrawsLinesMarkersBandGapsReferenceAndLegend) {
  const Drawn drawn = DrawTwoSeries();
  const Canvas& canvas = drawn.canvas;
  const LineChartFrame& f = drawn.frame;
  const Rgb first = kLineChartPalette[0];
  const Rgb second = kLineChartPalette[1];
  EXPECT_EQ(canvas.width(), 900);
  EXPECT_EQ(canvas.height(), 540);
  ASSERT_EQ(f.X(1.5), 214);
  ASSERT_EQ(f.Y(0.5), 260);

  // Series 0: its markers and the flat line between them.
  EXPECT_EQ(canvas.Pixel(f.X(1), f.Y(0.5)), first);
  EXPECT_EQ(canvas.Pixel(f.X(1.5), f.Y(0.5)), first);
  EXPECT_EQ(canvas.Pixel(f.X(3), f.Y(0.9)), first);
  // Inside its band, off the line and the grid: the colour at 20% over
  // white, 255 + (31 - 255) * 0.2 = 210.2 and so on.
  EXPECT_EQ(canvas.Pixel(f.X(1.5), f.Y(0.45)), (Rgb{210, 228, 240}));
  EXPECT_EQ(canvas.Pixel(f.X(1.5), f.Y(0.55)), (Rgb{210, 228, 240}));
  EXPECT_EQ(canvas.Pixel(f.X(1.5), f.Y(0.7)), kWhite);

  // Series 1: markers at rounds 1 and 3, and no line across round 2.
  EXPECT_EQ(canvas.Pixel(f.X(1), f.Y(0.2)), second);
  EXPECT_EQ(canvas.Pixel(f.X(3), f.Y(0.3)), second);
  EXPECT_EQ(canvas.Pixel(f.X(1.5), f.Y(0.21)), kWhite);
  EXPECT_EQ(canvas.Pixel(f.X(1.5), f.Y(0.225)), kWhite);
  EXPECT_EQ(canvas.Pixel(f.X(2.5), f.Y(0.275)), kWhite);

  // The reference: dashes of 8 pixels with gaps of 6 from the left edge.
  EXPECT_EQ(canvas.Pixel(f.left + 2, f.Y(0.95)), kLineChartReferenceColor);
  EXPECT_EQ(canvas.Pixel(f.left + 10, f.Y(0.95)), kWhite);
  EXPECT_EQ(canvas.Pixel(f.left + 16, f.Y(0.95)), kLineChartReferenceColor);

  // The legend's swatches, to the right of the plot.
  const LegendSwatch swatch0 = LineChartLegendSwatch(drawn.options, 0);
  const LegendSwatch swatch1 = LineChartLegendSwatch(drawn.options, 1);
  EXPECT_GT(swatch0.x, f.right());
  EXPECT_GT(swatch1.y, swatch0.y);
  EXPECT_EQ(canvas.Pixel(swatch0.x + 3, swatch0.y + 3), first);
  EXPECT_EQ(canvas.Pixel(swatch1.x + 3, swatch1.y + 3), second);

  // Axes: the frame in black, a tick under round 2, a grid line at y 0.2.
  EXPECT_EQ(canvas.Pixel(f.left, f.Y(0.7)), kBlack);
  EXPECT_EQ(canvas.Pixel(f.X(2), f.bottom() + 3), kBlack);
  EXPECT_EQ(canvas.Pixel(f.X(2.5), f.Y(0.2)), (Rgb{228, 228, 228}));
}

// A label longer than the default legend column is drawn whole once the
// chart is widened by what LineChartLegendWidth asks; the plot keeps its
// size.
TEST(LineChartTest, ALegendAsWideAsItsLongestLabelShowsItWhole) {
  LineSeries series;
  series.label = "Norm-bounded FedAvg, B = 0.5, sign-flip on site-1 (Adam)";
  series.x = {1, 2};
  series.y = {0.5, 0.6};
  LineChartOptions options;
  const int needed = LineChartLegendWidth({series});
  ASSERT_GT(needed, options.legend_width);
  const LineChartFrame narrow = LineChartFrameFor({series}, options);
  options.width += needed - options.legend_width;
  options.legend_width = needed;
  EXPECT_EQ(LineChartFrameFor({series}, options).width, narrow.width);

  const Canvas canvas = RenderLineChart({series}, options);
  const LegendSwatch swatch = LineChartLegendSwatch(options, 0);
  const int text_left = swatch.x + Canvas::TextHeight(2) + 8;
  const int text_right = text_left + Canvas::TextWidth(series.label, 2);
  ASSERT_LT(text_right, canvas.width());
  // The label's last glyph is drawn: some pixel in its last 12 columns.
  bool drawn = false;
  for (int x = text_right - 12; x < text_right; ++x) {
    for (int y = swatch.y; y < swatch.y + Canvas::TextHeight(2); ++y) {
      drawn = drawn || canvas.Pixel(x, y) != kWhite;
    }
  }
  EXPECT_TRUE(drawn);
}

TEST(LineChartTest, WritesAPngThatReadsBackAsTheChart) {
  const Drawn drawn = DrawTwoSeries();
  ScratchDir dir;
  ASSERT_TRUE(WriteLineChart(drawn.series, drawn.options, dir.Join("chart.png")).ok());
  absl::StatusOr<std::string> png = ReadFileToString(dir.Join("chart.png"));
  ASSERT_TRUE(png.ok()) << png.status();

  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(png->data()),
                            static_cast<int>(png->size()), &width, &height, &channels, 3),
      stbi_image_free);
  ASSERT_NE(pixels, nullptr) << stbi_failure_reason();
  ASSERT_EQ(width, 900);
  ASSERT_EQ(height, 540);
  auto at = [&](int x, int y) {
    const stbi_uc* p = pixels.get() + (y * width + x) * 3;
    return Rgb{p[0], p[1], p[2]};
  };
  const LineChartFrame& f = drawn.frame;
  EXPECT_EQ(at(f.X(1), f.Y(0.5)), kLineChartPalette[0]);
  EXPECT_EQ(at(f.X(3), f.Y(0.3)), kLineChartPalette[1]);
  EXPECT_EQ(at(f.X(1.5), f.Y(0.45)), (Rgb{210, 228, 240}));
  EXPECT_EQ(at(f.X(1.5), f.Y(0.7)), kWhite);
}

}  // namespace
}  // namespace fedmi
