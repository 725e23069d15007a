#include "common/plot/heatmap_overlay.h"

#include <optional>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(JetColorTest, RunsFromBlueToRed) {
  EXPECT_EQ(JetColor(0), (Rgb{0, 0, 128}));
  EXPECT_EQ(JetColor(0.5), (Rgb{128, 255, 128}));
  EXPECT_EQ(JetColor(1), (Rgb{128, 0, 0}));
  EXPECT_EQ(JetColor(-3), JetColor(0));
  EXPECT_EQ(JetColor(7), JetColor(1));
}

// A 4x4 image of grey 100 whose heat-map is 1 in the top-left quarter.
struct Fixture {
  std::vector<uint8_t> pixels = std::vector<uint8_t>(16, 100);
  std::vector<float> heat = std::vector<float>(16, 0);
  Fixture() { heat[0] = heat[1] = heat[4] = heat[5] = 1; }
};

TEST(HeatmapOverlayTest, BlendsHeatOverTheImageAndCaptionsIt) {
  Fixture f;
  HeatmapOverlayOptions options;
  options.side = 40;
  auto canvas = DrawHeatmapOverlay(f.pixels.data(), 4, 4, 1, f.heat, HeatmapPeak{0, 0},
                                   {"IMG 3 LABEL 1"}, options);
  ASSERT_THAT(canvas, IsOk());
  EXPECT_EQ(canvas->width(), 40);
  EXPECT_GT(canvas->height(), 40);  // room for the caption
  // Where the map is 0 the image shows untouched; where it is 1, red
  // (jet's hot end) is mixed in and the pixel is no longer grey.
  EXPECT_EQ(canvas->Pixel(35, 35), (Rgb{100, 100, 100}));
  const Rgb hot = canvas->Pixel(2, 12);
  EXPECT_GT(hot.r, hot.b);
  EXPECT_NE(hot, (Rgb{100, 100, 100}));
  // The caption is drawn in black below the image.
  bool caption_ink = false;
  for (int y = 40; y < canvas->height(); ++y) {
    for (int x = 0; x < 40; ++x) caption_ink |= canvas->Pixel(x, y) == kBlack;
  }
  EXPECT_TRUE(caption_ink);
  // The peak's cross is white at the centre of input pixel (0, 0).
  EXPECT_EQ(canvas->Pixel(5, 5), kWhite);
}

// A map that is 0 everywhere has no peak: the image shows untouched, with
// no cross anywhere (a cross at (0, 0) would claim evidence in the corner).
TEST(HeatmapOverlayTest, MapWithoutAPeakHasNoCross) {
  Fixture f;
  f.heat.assign(16, 0);
  HeatmapOverlayOptions options;
  options.side = 40;
  auto canvas = DrawHeatmapOverlay(f.pixels.data(), 4, 4, 1, f.heat, std::nullopt,
                                   {"MAP 0: NO EVIDENCE"}, options);
  ASSERT_THAT(canvas, IsOk());
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 40; ++x) {
      ASSERT_EQ(canvas->Pixel(x, y), (Rgb{100, 100, 100})) << x << "," << y;
    }
  }
}

TEST(HeatmapOverlayTest, RejectsAHeatmapOfAnotherSize) {
  Fixture f;
  f.heat.pop_back();
  EXPECT_THAT(DrawHeatmapOverlay(f.pixels.data(), 4, 4, 1, f.heat, HeatmapPeak{}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("15 values")));
}

TEST(ContactSheetTest, LaysTilesOutInRows) {
  std::vector<Canvas> tiles(5, Canvas(10, 20, kBlack));
  const Canvas sheet = DrawContactSheet(tiles, 2);
  EXPECT_EQ(sheet.width(), 4 + 2 * 14);
  EXPECT_EQ(sheet.height(), 4 + 3 * 24);
  EXPECT_EQ(sheet.Pixel(4, 4), kBlack);             // first tile
  EXPECT_EQ(sheet.Pixel(18 + 9, 28 + 19), kBlack);  // fourth tile's far corner
  EXPECT_EQ(sheet.Pixel(18, 52), kWhite);           // no sixth tile
  EXPECT_EQ(DrawContactSheet({}, 3).width(), 1);
}

}  // namespace
}  // namespace fedmi
