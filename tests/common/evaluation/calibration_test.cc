#include "common/evaluation/calibration.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

constexpr double kTolerance = 1e-6;  // the inputs are floats

TEST(CalibrationTest, OneExamplePerBin) {
  // 15 bins: 0.1 -> bin 1, 0.2 -> bin 3, 0.7 -> bin 10, 0.9 -> bin 13.
  // Brier (0.01 + 0.04 + 0.09 + 0.01) / 4; ECE (0.1 + 0.2 + 0.3 + 0.1) / 4.
  absl::StatusOr<Calibration> calibration =
      ComputeCalibration({0, 0, 1, 1}, {0.1f, 0.2f, 0.7f, 0.9f});
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  EXPECT_EQ(calibration->examples, 4);
  EXPECT_NEAR(calibration->brier, 0.0375, kTolerance);
  EXPECT_NEAR(calibration->ece, 0.175, kTolerance);
  ASSERT_EQ(calibration->bins.size(), 15u);
  for (int b : {1, 3, 10, 13}) EXPECT_EQ(calibration->bins[b].count, 1) << "bin " << b;
  EXPECT_EQ(calibration->bins[0].count, 0);
  EXPECT_TRUE(std::isnan(calibration->bins[0].mean_predicted));
  EXPECT_TRUE(std::isnan(calibration->bins[0].observed_frequency));
  EXPECT_NEAR(calibration->bins[10].mean_predicted, 0.7, kTolerance);
  EXPECT_DOUBLE_EQ(calibration->bins[10].observed_frequency, 1.0);
  EXPECT_DOUBLE_EQ(calibration->bins[10].lower, 10.0 / 15);
  EXPECT_DOUBLE_EQ(calibration->bins[10].upper, 11.0 / 15);
}

TEST(CalibrationTest, SharedBinIsWeightedByItsCount) {
  // Bin 7 holds 0.5 (class 0) and 0.5 (class 1): mean 0.5, frequency 0.5,
  // no gap. 0.55 (class 1) in bin 8: gap 0.45; 0.9 (class 0) in bin 13: 0.9.
  // ECE = (2/4) * 0 + (1/4) * 0.45 + (1/4) * 0.9.
  absl::StatusOr<Calibration> calibration =
      ComputeCalibration({0, 1, 1, 0}, {0.5f, 0.5f, 0.55f, 0.9f});
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  EXPECT_NEAR(calibration->ece, 0.3375, kTolerance);
  EXPECT_NEAR(calibration->brier, (0.25 + 0.25 + 0.2025 + 0.81) / 4, kTolerance);
  EXPECT_EQ(calibration->bins[7].count, 2);
  EXPECT_DOUBLE_EQ(calibration->bins[7].observed_frequency, 0.5);
}

TEST(CalibrationTest, PerfectlyCalibratedAndConfidentModelScoresZero) {
  absl::StatusOr<Calibration> calibration = ComputeCalibration({0, 1, 0, 1}, {0, 1, 0, 1});
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  EXPECT_DOUBLE_EQ(calibration->brier, 0);
  EXPECT_DOUBLE_EQ(calibration->ece, 0);
  // 1.0 belongs to the last bin, 0.0 to the first.
  EXPECT_EQ(calibration->bins[0].count, 2);
  EXPECT_EQ(calibration->bins[14].count, 2);
}

TEST(CalibrationTest, AlwaysHalfScoresQuarterBrier) {
  absl::StatusOr<Calibration> calibration =
      ComputeCalibration({0, 1, 1, 1}, {0.5f, 0.5f, 0.5f, 0.5f});
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  EXPECT_DOUBLE_EQ(calibration->brier, 0.25);
  EXPECT_DOUBLE_EQ(calibration->ece, 0.25);  // says 0.5, observes 0.75
}

TEST(CalibrationTest, OtherBinCounts) {
  absl::StatusOr<Calibration> calibration = ComputeCalibration({0, 1}, {0.2f, 0.6f}, 2);
  ASSERT_TRUE(calibration.ok()) << calibration.status();
  ASSERT_EQ(calibration->bins.size(), 2u);
  EXPECT_NEAR(calibration->ece, (0.2 + 0.4) / 2, kTolerance);
}

TEST(CalibrationTest, RejectsBadInput) {
  EXPECT_THAT(ComputeCalibration({}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no examples")));
  EXPECT_THAT(ComputeCalibration({0, 1}, {0.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 labels but 1")));
  EXPECT_THAT(ComputeCalibration({0, 2}, {0.5f, 0.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label 2")));
  EXPECT_THAT(ComputeCalibration({0, 1}, {0.5f, 1.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not in [0, 1]")));
  EXPECT_THAT(ComputeCalibration({0, 1}, {0.5f, std::nanf("")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not in [0, 1]")));
  EXPECT_THAT(ComputeCalibration({0}, {0.5f}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bins")));
}

}  // namespace
}  // namespace fedmi
