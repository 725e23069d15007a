#include "common/evaluation/segmentation_metrics.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

// A height x width mask with the rectangle [y0, y1) x [x0, x1) set.
std::vector<uint8_t> Rectangle(int64_t height, int64_t width, int64_t y0, int64_t y1, int64_t x0,
                               int64_t x1) {
  std::vector<uint8_t> mask(height * width, 0);
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) mask[y * width + x] = 1;
  }
  return mask;
}

std::vector<uint8_t> Pixels(int64_t height, int64_t width,
                            const std::vector<std::pair<int64_t, int64_t>>& set) {
  std::vector<uint8_t> mask(height * width, 0);
  for (auto [y, x] : set) mask[y * width + x] = 1;
  return mask;
}

TEST(SegmentationMetricsTest, ShiftedSquaresHaveHandComputedDiceAndIou) {
  // 4x4 squares, the prediction two columns right: 8 shared pixels of 16.
  const auto truth = Rectangle(8, 8, 0, 4, 0, 4);
  const auto prediction = Rectangle(8, 8, 0, 4, 2, 6);
  const MaskOverlap overlap = CountOverlap(prediction.data(), truth.data(), 64);
  EXPECT_EQ(overlap.intersection, 8);
  EXPECT_EQ(overlap.prediction, 16);
  EXPECT_EQ(overlap.truth, 16);
  EXPECT_EQ(overlap.Union(), 24);
  EXPECT_DOUBLE_EQ(DiceOf(overlap), 0.5);
  EXPECT_DOUBLE_EQ(IouOf(overlap), 1.0 / 3.0);
}

TEST(SegmentationMetricsTest, EmptyMasksFollowTheConvention) {
  EXPECT_DOUBLE_EQ(DiceOf({0, 0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(IouOf({0, 0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(DiceOf({0, 5, 0}), 0.0);
  EXPECT_DOUBLE_EQ(IouOf({0, 0, 5}), 0.0);
  const std::vector<uint8_t> empty(16, 0);
  const auto one = Pixels(4, 4, {{1, 1}});
  EXPECT_DOUBLE_EQ(Hausdorff95(empty.data(), empty.data(), 4, 4), 0.0);
  EXPECT_TRUE(std::isnan(Hausdorff95(one.data(), empty.data(), 4, 4)));
  EXPECT_TRUE(std::isnan(Hausdorff95(empty.data(), one.data(), 4, 4)));
}

TEST(SegmentationMetricsTest, HausdorffOfSinglePixelsIsTheirDistance) {
  const auto a = Pixels(10, 10, {{0, 0}});
  const auto b = Pixels(10, 10, {{3, 4}});
  EXPECT_DOUBLE_EQ(Hausdorff95(a.data(), b.data(), 10, 10), 5.0);
  EXPECT_DOUBLE_EQ(Hausdorff95(a.data(), a.data(), 10, 10), 0.0);
}

TEST(SegmentationMetricsTest, HausdorffOfShiftedLinesIsTheShift) {
  // Vertical lines at x = 2 and x = 5: every surface pixel is 3 away.
  const auto a = Rectangle(10, 10, 0, 10, 2, 3);
  const auto b = Rectangle(10, 10, 0, 10, 5, 6);
  EXPECT_DOUBLE_EQ(Hausdorff95(a.data(), b.data(), 10, 10), 3.0);
}

TEST(SegmentationMetricsTest, HausdorffTakesThe95thPercentileOfPooledDistances) {
  // P = {(0,0), (0,10)}, T = {(0,0)}: distances P->T {0, 10}, T->P {0};
  // pooled {0, 0, 10}, position 0.95 * 2 = 1.9: 0 + 0.9 * 10 = 9.
  const auto p = Pixels(1, 11, {{0, 0}, {0, 10}});
  const auto t = Pixels(1, 11, {{0, 0}});
  EXPECT_NEAR(Hausdorff95(p.data(), t.data(), 1, 11), 9.0, 1e-12);
}

TEST(SegmentationMetricsTest, InteriorPixelsAreNotSurface) {
  // A filled 5x5 square against its own outline: same surface, HD95 0.
  const auto filled = Rectangle(9, 9, 2, 7, 2, 7);
  auto outline = filled;
  for (int64_t y = 3; y < 6; ++y) {
    for (int64_t x = 3; x < 6; ++x) outline[y * 9 + x] = 0;
  }
  EXPECT_DOUBLE_EQ(Hausdorff95(filled.data(), outline.data(), 9, 9), 0.0);
}

TEST(SegmentationMetricsTest, DistanceTransformMatchesBruteForce) {
  std::mt19937 rng(7);
  const int64_t height = 13, width = 17;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<uint8_t> seeds(height * width);
    for (auto& s : seeds) s = std::bernoulli_distribution(0.05 + 0.02 * trial)(rng);
    std::vector<double> fast(height * width);
    SquaredDistanceTransform(seeds.data(), height, width, fast.data());
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        double best = std::numeric_limits<double>::infinity();
        for (int64_t sy = 0; sy < height; ++sy) {
          for (int64_t sx = 0; sx < width; ++sx) {
            if (seeds[sy * width + sx]) {
              best = std::min<double>(best, (sy - y) * (sy - y) + (sx - x) * (sx - x));
            }
          }
        }
        ASSERT_EQ(fast[y * width + x], best) << "trial " << trial << " at " << y << "," << x;
      }
    }
  }
}

TEST(SegmentationMetricsTest, DistanceTransformWithoutSeedsIsInfinite) {
  const std::vector<uint8_t> none(6, 0);
  std::vector<double> out(6);
  SquaredDistanceTransform(none.data(), 2, 3, out.data());
  for (double d : out) EXPECT_TRUE(std::isinf(d));
}

TEST(SegmentationMetricsTest, CountsPoolAndAverage) {
  SegmentationCounts counts;
  const auto truth = Rectangle(8, 8, 0, 4, 0, 4);
  const auto shifted = Rectangle(8, 8, 0, 4, 2, 6);
  const std::vector<uint8_t> empty(64, 0);
  counts.AddImage(shifted.data(), truth.data(), 8, 8);  // Dice 0.5, HD95 2.
  counts.AddImage(empty.data(), empty.data(), 8, 8);    // Dice 1, HD95 0.
  counts.AddImage(empty.data(), truth.data(), 8, 8);    // Dice 0, HD95 undefined.
  EXPECT_EQ(counts.images, 3);
  EXPECT_EQ(counts.intersection, 8);
  EXPECT_EQ(counts.prediction, 16);
  EXPECT_EQ(counts.truth, 32);
  EXPECT_EQ(counts.Union(), 40);
  EXPECT_DOUBLE_EQ(counts.PooledDice(), 16.0 / 48.0);
  EXPECT_DOUBLE_EQ(counts.PooledIou(), 8.0 / 40.0);
  EXPECT_DOUBLE_EQ(counts.MeanDice(), 1.5 / 3.0);
  EXPECT_DOUBLE_EQ(counts.MeanIou(), (1.0 / 3.0 + 1.0) / 3.0);
  EXPECT_EQ(counts.hausdorff95_images, 2);
  EXPECT_EQ(counts.hausdorff_undefined, 1);
  EXPECT_DOUBLE_EQ(counts.MeanHausdorff95(), 1.0);
}

TEST(SegmentationMetricsTest, MergingSitesEqualsCountingTogether) {
  const auto truth = Rectangle(8, 8, 1, 5, 1, 5);
  const auto a = Rectangle(8, 8, 0, 4, 0, 4);
  const auto b = Rectangle(8, 8, 2, 7, 1, 6);
  SegmentationCounts site1, site2, together;
  site1.AddImage(a.data(), truth.data(), 8, 8);
  site2.AddImage(b.data(), truth.data(), 8, 8);
  together.AddImage(a.data(), truth.data(), 8, 8);
  together.AddImage(b.data(), truth.data(), 8, 8);
  ASSERT_THAT(site1.Merge(site2), IsOk());
  EXPECT_EQ(site1.images, together.images);
  EXPECT_EQ(site1.intersection, together.intersection);
  EXPECT_DOUBLE_EQ(site1.PooledDice(), together.PooledDice());
  EXPECT_DOUBLE_EQ(site1.MeanDice(), together.MeanDice());
  EXPECT_DOUBLE_EQ(site1.MeanHausdorff95(), together.MeanHausdorff95());
}

TEST(SegmentationMetricsTest, MergeRefusesImpossibleCountsAndKeepsItself) {
  SegmentationCounts mine;
  mine.Add({2, 3, 4});
  SegmentationCounts bad;
  bad.images = 1;
  bad.prediction = 3;
  bad.truth = 4;
  bad.intersection = 5;
  EXPECT_THAT(mine.Merge(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("intersection 5")));
  EXPECT_EQ(mine.images, 1);
  EXPECT_EQ(mine.intersection, 2);
  bad.intersection = 1;
  bad.dice_sum = 2.5;
  EXPECT_THAT(mine.Merge(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dice_sum")));
  bad.dice_sum = 0.5;
  bad.hausdorff95_sum = std::nan("");
  EXPECT_THAT(mine.Merge(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hausdorff95_sum")));
}

// A site's report is untrusted: counts that are each possible may still
// overflow int64 when added, which wrapped them negative (undefined
// behaviour) instead of refusing them.
TEST(SegmentationMetricsTest, MergeRefusesCountsThatOverflow) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  SegmentationCounts huge;
  huge.images = kMax;
  huge.prediction = kMax;
  huge.truth = kMax;
  SegmentationCounts total;
  ASSERT_THAT(total.Merge(huge), IsOk());
  EXPECT_THAT(total.Merge(huge), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(total.images, kMax);
  EXPECT_EQ(total.prediction, kMax);
  // Within one report, too: more HD95 images than images.
  SegmentationCounts bad;
  bad.images = kMax;
  bad.hausdorff95_images = kMax;
  bad.hausdorff_undefined = kMax;
  EXPECT_THAT(bad.Check(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SegmentationMetricsTest, NoImagesGiveNan) {
  const SegmentationCounts none;
  EXPECT_TRUE(std::isnan(none.PooledDice()));
  EXPECT_TRUE(std::isnan(none.MeanDice()));
  EXPECT_TRUE(std::isnan(none.MeanHausdorff95()));
}

}  // namespace
}  // namespace fedmi
