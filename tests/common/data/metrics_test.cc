#include "common/data/metrics.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(RocAucTest, MatchesHandComputedPairs) {
  // Positive 0.35 beats negative 0.1 but not 0.4; positive 0.8 beats both:
  // 3 of 4 pairs.
  EXPECT_DOUBLE_EQ(RocAuc({0, 0, 1, 1}, {0.1f, 0.4f, 0.35f, 0.8f}), 0.75);
  EXPECT_DOUBLE_EQ(RocAuc({0, 0, 1, 1}, {0.1f, 0.2f, 0.3f, 0.4f}), 1.0);
  EXPECT_DOUBLE_EQ(RocAuc({1, 1, 0, 0}, {0.1f, 0.2f, 0.3f, 0.4f}), 0.0);
}

TEST(RocAucTest, TiesCountHalf) {
  // Pairs (pos, neg): (0.5, 0.5) tie = 0.5, (0.5, 0.2) = 1, (0.9, *) = 2.
  EXPECT_DOUBLE_EQ(RocAuc({0, 1, 0, 1}, {0.5f, 0.5f, 0.2f, 0.9f}), 3.5 / 4);
  EXPECT_DOUBLE_EQ(RocAuc({0, 1, 1, 0, 1}, {0.3f, 0.3f, 0.3f, 0.3f, 0.3f}), 0.5);
}

TEST(RocAucTest, UndefinedCasesAreNaN) {
  EXPECT_TRUE(std::isnan(RocAuc({1, 1}, {0.2f, 0.3f})));
  EXPECT_TRUE(std::isnan(RocAuc({0, 0}, {0.2f, 0.3f})));
  EXPECT_TRUE(std::isnan(RocAuc({}, {})));
  EXPECT_TRUE(std::isnan(RocAuc({0, 1}, {0.2f})));
  EXPECT_TRUE(std::isnan(RocAuc({0, 2}, {0.2f, 0.3f})));
  EXPECT_TRUE(std::isnan(RocAuc({0, 1}, {0.2f, std::nanf("")})));
}

TEST(BinaryMetricsTest, MatchesHandComputedConfusionMatrix) {
  // At 0.5 only 0.8 is predicted positive: TP=1, FN=1, TN=2, FP=0.
  absl::StatusOr<BinaryMetrics> metrics =
      ComputeBinaryMetrics({0, 0, 1, 1}, {0.1f, 0.4f, 0.35f, 0.8f});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->examples, 4);
  EXPECT_DOUBLE_EQ(metrics->auc, 0.75);
  EXPECT_DOUBLE_EQ(metrics->accuracy, 0.75);
  EXPECT_DOUBLE_EQ(metrics->sensitivity, 0.5);
  EXPECT_DOUBLE_EQ(metrics->specificity, 1.0);
  EXPECT_DOUBLE_EQ(metrics->f1, 2.0 / 3.0);

  // At 0.3: predictions 0,1,1,1: TP=2, FN=0, TN=1, FP=1.
  metrics = ComputeBinaryMetrics({0, 0, 1, 1}, {0.1f, 0.4f, 0.35f, 0.8f}, 0.3);
  ASSERT_TRUE(metrics.ok());
  EXPECT_DOUBLE_EQ(metrics->auc, 0.75);  // AUC does not depend on the threshold.
  EXPECT_DOUBLE_EQ(metrics->accuracy, 0.75);
  EXPECT_DOUBLE_EQ(metrics->sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(metrics->specificity, 0.5);
  EXPECT_DOUBLE_EQ(metrics->f1, 0.8);
}

TEST(BinaryMetricsTest, ProbabilityEqualToThresholdIsPositive) {
  absl::StatusOr<BinaryMetrics> metrics = ComputeBinaryMetrics({1, 0}, {0.5f, 0.25f});
  ASSERT_TRUE(metrics.ok());
  EXPECT_DOUBLE_EQ(metrics->sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(metrics->accuracy, 1.0);
}

TEST(BinaryMetricsTest, AbsentClassGivesNaNNotZero) {
  absl::StatusOr<BinaryMetrics> only_positive = ComputeBinaryMetrics({1, 1, 1}, {0.9f, 0.2f, 0.6f});
  ASSERT_TRUE(only_positive.ok());
  EXPECT_TRUE(std::isnan(only_positive->auc));
  EXPECT_TRUE(std::isnan(only_positive->specificity));
  EXPECT_DOUBLE_EQ(only_positive->sensitivity, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(only_positive->f1, 4.0 / 5.0);

  absl::StatusOr<BinaryMetrics> only_negative = ComputeBinaryMetrics({0, 0}, {0.1f, 0.2f});
  ASSERT_TRUE(only_negative.ok());
  EXPECT_TRUE(std::isnan(only_negative->auc));
  EXPECT_TRUE(std::isnan(only_negative->sensitivity));
  EXPECT_TRUE(std::isnan(only_negative->f1));  // no positives, none predicted
  EXPECT_DOUBLE_EQ(only_negative->specificity, 1.0);
  EXPECT_DOUBLE_EQ(only_negative->accuracy, 1.0);

  // A false positive makes f1 defined (and 0).
  absl::StatusOr<BinaryMetrics> false_alarm = ComputeBinaryMetrics({0, 0}, {0.9f, 0.2f});
  ASSERT_TRUE(false_alarm.ok());
  EXPECT_DOUBLE_EQ(false_alarm->f1, 0.0);
}

TEST(BinaryMetricsTest, RejectsBadInput) {
  EXPECT_THAT(
      ComputeBinaryMetrics({0, 1}, {0.5f}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 labels but 1 probabilities")));
  EXPECT_THAT(ComputeBinaryMetrics({}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no examples")));
  EXPECT_THAT(ComputeBinaryMetrics({0, 2}, {0.5f, 0.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("label 2 at example 1 is not 0 or 1")));
  EXPECT_THAT(
      ComputeBinaryMetrics({0, 1}, {std::nanf(""), 0.5f}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("probability at example 0 is NaN")));
  EXPECT_THAT(ComputeBinaryMetrics({0, 1}, {0.5f, 0.5f}, std::nan("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threshold is NaN")));
  // Only a NaN prediction is marked as the model's fault.
  EXPECT_TRUE(IsNaNPredictionError(ComputeBinaryMetrics({0, 1}, {0.5f, std::nanf("")}).status()));
  EXPECT_FALSE(IsNaNPredictionError(ComputeBinaryMetrics({0, 2}, {0.5f, 0.5f}).status()));
  EXPECT_FALSE(
      IsNaNPredictionError(ComputeBinaryMetrics({0, 1}, {0.5f, 0.5f}, std::nan("")).status()));
  EXPECT_FALSE(IsNaNPredictionError(absl::OkStatus()));
}

}  // namespace
}  // namespace fedmi
