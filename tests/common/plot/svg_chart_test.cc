// SVG line charts: where points land, gaps at NaN, escaping, empty charts.
#include "common/plot/svg_chart.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(EscapeXmlTest, EscapesMarkupAndQuotes) {
  EXPECT_EQ(EscapeXml("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  EXPECT_EQ(EscapeXml("site-1"), "site-1");
}

TEST(SvgChartFrameTest, SpansTheRoundsAndNiceTicksOfTheValues) {
  // 320 x 200, a title, no legend (one series), no x label: the plot area
  // is x 44..308 and y 22..184.
  SvgChartOptions options;
  options.title = "AUC";
  LineSeries auc{"pooled", {1, 2, 3}, {0.62, 0.71, 0.83}, {}, {}, {}};
  const SvgChartFrame frame = SvgChartFrameFor({auc}, options);
  EXPECT_DOUBLE_EQ(frame.left, 44);
  EXPECT_DOUBLE_EQ(frame.top, 22);
  EXPECT_DOUBLE_EQ(frame.width, 264);
  EXPECT_DOUBLE_EQ(frame.height, 162);
  EXPECT_DOUBLE_EQ(frame.x_min, 1);
  EXPECT_DOUBLE_EQ(frame.x_max, 3);
  // NiceTicks(0.62, 0.83, 6): steps of 0.05 from 0.6 to 0.85.
  EXPECT_NEAR(frame.y_min, 0.60, 1e-12);
  EXPECT_NEAR(frame.y_max, 0.85, 1e-12);
  EXPECT_DOUBLE_EQ(frame.X(2), 44 + 132);
  EXPECT_NEAR(frame.Y(0.85), 22, 1e-9);
  EXPECT_NEAR(frame.Y(0.60), 184, 1e-9);
}

TEST(SvgChartTest, DrawsEachPointWhereTheFramePutsIt) {
  SvgChartOptions options;
  options.title = "AUC";
  options.y_min = 0;
  options.y_max = 1;
  LineSeries auc{"pooled", {1, 2, 3}, {0.5, 0.75, 1.0}, {}, {}, {}};
  const std::string svg = RenderSvgLineChart({auc}, options);
  // x: 44, 176, 308; y: 184 - 162 * v = 103, 62.5, 22.
  EXPECT_THAT(svg, HasSubstr("<polyline class=\"series\" data-series=\"pooled\" "
                             "data-points=\"3\""));
  EXPECT_THAT(svg, HasSubstr("points=\"44.0,103.0 176.0,62.5 308.0,22.0\""));
  EXPECT_THAT(svg, HasSubstr("<title>pooled round 2: 0.750</title>"));
  EXPECT_THAT(svg, HasSubstr(">AUC</text>"));
  // Ticks 0, 0.2, ..., 1 with one decimal.
  EXPECT_THAT(svg, HasSubstr(">0.2</text>"));
  EXPECT_THAT(svg, HasSubstr(">1.0</text>"));
  EXPECT_THAT(svg, HasSubstr("<svg class=\"chart\" width=\"320\" height=\"200\""));
  EXPECT_THAT(svg, Not(HasSubstr("http"))) << "inline SVG needs no namespace URL";
  EXPECT_THAT(svg, Not(HasSubstr("no rounds yet")));
}

TEST(SvgChartTest, ANaNSplitsTheLine) {
  LineSeries loss{"site-a", {1, 2, 3, 4}, {0.9, kNaN, 0.5, 0.4}, {}, {}, {}};
  const std::string svg = RenderSvgLineChart({loss}, SvgChartOptions{});
  EXPECT_THAT(svg, HasSubstr("data-points=\"1\""));
  EXPECT_THAT(svg, HasSubstr("data-points=\"2\""));
  EXPECT_THAT(svg, Not(HasSubstr("data-points=\"3\"")));
}

TEST(SvgChartTest, EscapesLabelsAndTitles) {
  SvgChartOptions options;
  options.title = "<b>AUC</b>";
  LineSeries a{"<script>alert(1)</script>", {1}, {0.5}, {}, {}, {}};
  LineSeries b{"b&b", {1}, {0.6}, {}, {}, {}};
  const std::string svg = RenderSvgLineChart({a, b}, options);
  EXPECT_THAT(svg, Not(HasSubstr("<script>")));
  EXPECT_THAT(svg, Not(HasSubstr("<b>")));
  EXPECT_THAT(svg, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(svg, HasSubstr(">b&amp;b</text>")) << "legend of two series";
}

TEST(SvgChartTest, OneRoundSitsInTheMiddleOfNiceTicks) {
  LineSeries auc{"pooled", {1}, {0.7}, {}, {}, {}};
  const SvgChartFrame frame = SvgChartFrameFor({auc}, SvgChartOptions{});
  EXPECT_DOUBLE_EQ(frame.x_min, 0);
  EXPECT_DOUBLE_EQ(frame.x_max, 2);
  EXPECT_THAT(RenderSvgLineChart({auc}, SvgChartOptions{}), HasSubstr("data-points=\"1\""));
}

// An AUC that repeats up to rounding must draw (it used to hang the
// dashboard's request in NiceTicks).
TEST(SvgChartTest, ValuesARoundingErrorApartDraw) {
  LineSeries auc{"pooled", {1, 2}, {0.7, std::nextafter(0.7, 1.0)}, {}, {}, {}};
  const SvgChartFrame frame = SvgChartFrameFor({auc}, SvgChartOptions{});
  EXPECT_NEAR(frame.y_min, 0.6, 1e-12);
  EXPECT_NEAR(frame.y_max, 0.8, 1e-12);
  EXPECT_THAT(RenderSvgLineChart({auc}, SvgChartOptions{}), HasSubstr("data-points=\"2\""));
}

TEST(SvgChartTest, WithoutPointsSaysSo) {
  SvgChartOptions options;
  options.empty_text = "waiting for round 1";
  const std::string svg = RenderSvgLineChart({LineSeries{"pooled", {}, {}, {}, {}, {}}}, options);
  EXPECT_THAT(svg, HasSubstr(">waiting for round 1</text>"));
  EXPECT_THAT(svg, Not(HasSubstr("<polyline")));
}

TEST(SvgSparklineTest, MarksTheLastPointAndIsEmptyWithoutData) {
  // 3 points over 60 x 20 with 3 px padding: x 3, 30, 57; y from 0.6 (17) to 0.8 (3).
  const std::string svg = RenderSvgSparkline({0.6, 0.7, 0.8}, 60, 20);
  EXPECT_THAT(svg, HasSubstr("points=\"3.0,17.0 30.0,10.0 57.0,3.0\""));
  EXPECT_THAT(svg, HasSubstr("<circle cx=\"57.0\" cy=\"3.0\""));
  EXPECT_EQ(RenderSvgSparkline({kNaN}, 60, 20), "");
  EXPECT_EQ(RenderSvgSparkline({}, 60, 20), "");
}

}  // namespace
}  // namespace fedmi
