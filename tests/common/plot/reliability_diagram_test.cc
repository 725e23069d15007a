#include "common/plot/reliability_diagram.h"

#include <string>
#include <vector>

#include "common/evaluation/calibration.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

// 15 bins; bin 1 [1/15, 2/15): 10 examples, mean 0.1, observed 0.1; bin 13
// [13/15, 14/15): 30 examples, mean 0.9, observed 0.5 (overconfident).
std::vector<ReliabilityBin> TwoBins() {
  std::vector<ReliabilityBin> bins(15);
  for (int b = 0; b < 15; ++b) {
    bins[b].lower = b / 15.0;
    bins[b].upper = (b + 1) / 15.0;
  }
  bins[1].count = 10;
  bins[1].mean_predicted = 0.1;
  bins[1].observed_frequency = 0.1;
  bins[13].count = 30;
  bins[13].mean_predicted = 0.9;
  bins[13].observed_frequency = 0.5;
  return bins;
}

double Center(const ReliabilityBin& bin) { return (bin.lower + bin.upper) / 2; }

TEST(ReliabilityDiagramTest, DrawsTheDiagonalBarsAndGap) {
  const std::vector<ReliabilityBin> bins = TwoBins();
  const Canvas canvas = RenderReliabilityDiagram(bins, 0.3, 0.2, "Test model");
  EXPECT_EQ(canvas.width(), kReliabilityDiagramWidth);
  EXPECT_EQ(canvas.height(), kReliabilityDiagramHeight);
  const ReliabilityFrame frame;

  // The diagonal of perfect calibration, over bars and empty space alike.
  for (double p : {0.05, 0.25, 0.5, 0.6, 0.9}) {
    EXPECT_EQ(canvas.Pixel(frame.X(p), frame.Y(p)), kDiagonalColor) << p;
  }
  // Bars reach the observed frequency.
  const int x1 = frame.X(Center(bins[1]));
  EXPECT_EQ(canvas.Pixel(x1, frame.Y(0.05)), kObservedBarColor);
  EXPECT_EQ(canvas.Pixel(x1, frame.Y(0.09)), kObservedBarColor);
  const int x13 = frame.X(Center(bins[13]));
  EXPECT_EQ(canvas.Pixel(x13, frame.Y(0.3)), kObservedBarColor);
  // Between observed 0.5 and predicted 0.9: the gap, translucent red on white.
  EXPECT_EQ(canvas.Pixel(x13, frame.Y(0.7)), (Rgb{243, 183, 183}));
  // Above the predicted mean: background.
  EXPECT_EQ(canvas.Pixel(x13, frame.Y(0.95)), kWhite);
  // An empty bin draws no bar: bin 5, [1/3, 0.4).
  EXPECT_EQ(canvas.Pixel(frame.X(Center(bins[5])), frame.Y(0.1)), kWhite);
  // The counts strip: bin 13 has the most examples, its bar is full height.
  const int counts_bottom = frame.Y(0) + 16 + 60;
  EXPECT_EQ(canvas.Pixel(x13, counts_bottom - 10), kCountBarColor);
  EXPECT_EQ(canvas.Pixel(x13, counts_bottom - 55), kCountBarColor);
  EXPECT_EQ(canvas.Pixel(x1, counts_bottom - 55), kWhite);  // a third as high
  EXPECT_EQ(canvas.Pixel(x1, counts_bottom - 10), kCountBarColor);
}

TEST(ReliabilityDiagramTest, WritesAPngOfTheDiagramsSize) {
  ScratchDir dir;
  absl::StatusOr<Calibration> calibration =
      ComputeCalibration({0, 0, 1, 1, 1}, {0.1f, 0.3f, 0.6f, 0.8f, 0.95f});
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  ASSERT_TRUE(WriteReliabilityDiagram(calibration->bins, calibration->ece, calibration->brier,
                                      "model.pt on test", dir.Join("r.png"))
                  .ok());
  absl::StatusOr<std::string> png = ReadFileToString(dir.Join("r.png"));
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_GT(png->size(), 24u);
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(*png, *RenderReliabilityDiagram(calibration->bins, calibration->ece, calibration->brier,
                                            "model.pt on test")
                       .EncodePng());
  // IHDR: width and height, big-endian, at bytes 16 and 20.
  auto u32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<uint8_t>((*png)[at])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>((*png)[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>((*png)[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>((*png)[at + 3]));
  };
  EXPECT_EQ(u32(16), static_cast<uint32_t>(kReliabilityDiagramWidth));
  EXPECT_EQ(u32(20), static_cast<uint32_t>(kReliabilityDiagramHeight));
}

TEST(ReliabilityDiagramTest, FailsWithTheEnvsError) {
  ScratchDir dir;
  EXPECT_THAT(WriteReliabilityDiagram(TwoBins(), 0.1, 0.1, "x", dir.Join("missing/r.png")),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("missing")));
}

}  // namespace
}  // namespace fedmi
