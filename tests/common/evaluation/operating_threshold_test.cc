#include "common/evaluation/operating_threshold.h"

#include <cmath>
#include <random>

#include "common/data/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// 10 bins. Class 0 at 0.05, 0.15, 0.25, 0.45 (bins 0, 1, 2, 4); class 1 at
// 0.35, 0.55, 0.75, 0.95 (bins 3, 5, 7, 9). At threshold b / 10:
//   b    0    1    2    3    4    5    6    7    8    9
//   TP   4    4    4    4    3    3    2    2    1    1
//   TN   0    1    2    3    3    4    4    4    4    4
//   J    0  .25  .50  .75  .50  .75  .50  .50  .25  .25
ScoreHistogram Example() {
  absl::StatusOr<ScoreHistogram> histogram = ScoreHistogram::FromScores(
      {0, 0, 0, 0, 1, 1, 1, 1}, {0.05f, 0.15f, 0.25f, 0.45f, 0.35f, 0.55f, 0.75f, 0.95f}, 10);
  EXPECT_TRUE(histogram.ok()) << histogram.status();
  return *histogram;
}

ThresholdRule Sensitivity(double target) {
  return ThresholdRule{ThresholdMethod::kTargetSensitivity, target};
}

TEST(ScoreHistogramTest, CountsScoresPerClassAndBin) {
  const ScoreHistogram histogram = Example();
  EXPECT_EQ(histogram.bins(), 10);
  EXPECT_THAT(histogram.negative_counts(), ElementsAre(1, 1, 1, 0, 1, 0, 0, 0, 0, 0));
  EXPECT_THAT(histogram.positive_counts(), ElementsAre(0, 0, 0, 1, 0, 1, 0, 1, 0, 1));
  EXPECT_EQ(histogram.negatives(), 4);
  EXPECT_EQ(histogram.positives(), 4);
  EXPECT_EQ(histogram.BinOf(0.0f), 0);
  EXPECT_EQ(histogram.BinOf(0.3f), 3);  // a bin's lower edge belongs to it
  EXPECT_EQ(histogram.BinOf(1.0f), 9);  // 1.0 belongs to the last bin
}

TEST(ScoreHistogramTest, DefaultHasAThousandBins) {
  EXPECT_EQ(ScoreHistogram().bins(), 1000);
  EXPECT_EQ(ScoreHistogram().BinOf(0.374f), 374);
}

TEST(ScoreHistogramTest, MergeSumsCountsAndRefusesOtherBinCounts) {
  ScoreHistogram sum = Example();
  ASSERT_TRUE(sum.Merge(Example()).ok());
  EXPECT_THAT(sum.negative_counts(), ElementsAre(2, 2, 2, 0, 2, 0, 0, 0, 0, 0));
  EXPECT_EQ(sum.positives(), 8);
  EXPECT_THAT(sum.Merge(ScoreHistogram(20)), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      AllOf(HasSubstr("20"), HasSubstr("10"))));
  EXPECT_EQ(sum.positives(), 8);
}

TEST(ScoreHistogramTest, CountsRoundTrip) {
  const ScoreHistogram histogram = Example();
  absl::StatusOr<ScoreHistogram> copy =
      ScoreHistogram::FromCounts(histogram.negative_counts(), histogram.positive_counts());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->negative_counts(), histogram.negative_counts());
  EXPECT_EQ(copy->positive_counts(), histogram.positive_counts());
  EXPECT_EQ(copy->negatives(), 4);
  EXPECT_EQ(copy->positives(), 4);
}

TEST(ScoreHistogramTest, RejectsBadInput) {
  EXPECT_THAT(ScoreHistogram::FromCounts({1, 2}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 bins for class 0")));
  EXPECT_THAT(ScoreHistogram::FromCounts({}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no bins")));
  EXPECT_THAT(ScoreHistogram::FromCounts({1, -1}, {0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside [0, ")));
  // What a hostile site could send to exhaust the coordinator's memory or
  // overflow its sum.
  EXPECT_THAT(ScoreHistogram::FromCounts(std::vector<int64_t>(kMaxScoreBins + 1, 0),
                                         std::vector<int64_t>(kMaxScoreBins + 1, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 100000")));
  EXPECT_THAT(ScoreHistogram::FromCounts({INT64_MAX, 0}, {0, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bin 0 has a count")));
  EXPECT_THAT(ScoreHistogram::FromCounts({kMaxScoreCount, 0}, {0, 1}), IsOk());
  EXPECT_THAT(ScoreHistogram::FromScores({0, 1}, {0.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 labels but 1")));
  EXPECT_THAT(ScoreHistogram::FromScores({0, 3}, {0.5f, 0.5f}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("example 1"), HasSubstr("label 3"))));
  EXPECT_THAT(ScoreHistogram::FromScores({0, 1}, {0.5f, -0.1f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not in [0, 1]")));
  EXPECT_THAT(ScoreHistogram::FromScores({0}, {std::nanf("")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not in [0, 1]")));
}

TEST(ChooseOperatingThresholdTest, YoudenTieGoesToTheThresholdClosestToHalf) {
  // J = 0.75 at 0.3 and at 0.5.
  absl::StatusOr<OperatingPoint> point =
      ChooseOperatingThreshold(Example(), ThresholdRule{ThresholdMethod::kYouden});
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_DOUBLE_EQ(point->threshold, 0.5);
  EXPECT_DOUBLE_EQ(point->sensitivity, 0.75);
  EXPECT_DOUBLE_EQ(point->specificity, 1.0);
  EXPECT_EQ(point->rule.method, ThresholdMethod::kYouden);
}

TEST(ChooseOperatingThresholdTest, YoudenTieEquallyFarFromHalfGoesLower) {
  // Class 0 in bins 3 and 5, class 1 in bins 4 and 6: J = 0.5 at 0.4 and
  // at 0.6 only.
  absl::StatusOr<ScoreHistogram> histogram =
      ScoreHistogram::FromCounts({0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 0, 1, 0, 0, 0});
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  absl::StatusOr<OperatingPoint> point = ChooseOperatingThreshold(*histogram, ThresholdRule{});
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_DOUBLE_EQ(point->threshold, 0.4);
  EXPECT_DOUBLE_EQ(point->sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(point->specificity, 0.5);
}

TEST(ChooseOperatingThresholdTest, TargetSensitivityTakesTheHighestThresholdReachingIt) {
  absl::StatusOr<OperatingPoint> point = ChooseOperatingThreshold(Example(), Sensitivity(0.75));
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_DOUBLE_EQ(point->threshold, 0.5);  // 0.6 finds only 2 of 4
  EXPECT_DOUBLE_EQ(point->sensitivity, 0.75);

  point = ChooseOperatingThreshold(Example(), Sensitivity(0.95));
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_DOUBLE_EQ(point->threshold, 0.3);
  EXPECT_DOUBLE_EQ(point->sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(point->specificity, 0.75);
}

TEST(ChooseOperatingThresholdTest, TargetReachedExactlyCounts) {
  // 19 of 20 positives at 0.8: sensitivity exactly 0.95, although 0.95 * 20
  // is not exactly 19 in binary.
  absl::StatusOr<ScoreHistogram> histogram =
      ScoreHistogram::FromCounts({0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 19, 0});
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  absl::StatusOr<OperatingPoint> point = ChooseOperatingThreshold(*histogram, Sensitivity(0.95));
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_DOUBLE_EQ(point->threshold, 0.8);
  EXPECT_DOUBLE_EQ(point->sensitivity, 0.95);
  EXPECT_DOUBLE_EQ(point->specificity, 1.0);
}

TEST(ChooseOperatingThresholdTest, AgreesWithComputeBinaryMetricsAtTheChosenThreshold) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::vector<int64_t> labels;
  std::vector<float> scores;
  for (int i = 0; i < 2000; ++i) {
    const int64_t label = i % 3 == 0 ? 1 : 0;
    labels.push_back(label);
    // Positives score higher on average, with overlap.
    scores.push_back(label == 1 ? std::sqrt(uniform(rng)) : uniform(rng) * uniform(rng));
  }
  // Scores on bin edges too, where >= must agree with the bin.
  labels.insert(labels.end(), {0, 1, 0, 1});
  scores.insert(scores.end(), {0.3f, 0.3f, 0.374f, 0.7f});
  absl::StatusOr<ScoreHistogram> histogram = ScoreHistogram::FromScores(labels, scores);
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  for (const ThresholdRule& rule : {ThresholdRule{}, Sensitivity(0.9), Sensitivity(0.99)}) {
    absl::StatusOr<OperatingPoint> point = ChooseOperatingThreshold(*histogram, rule);
    ASSERT_TRUE(point.ok()) << point.status();
    absl::StatusOr<BinaryMetrics> metrics = ComputeBinaryMetrics(labels, scores, point->threshold);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    EXPECT_DOUBLE_EQ(point->sensitivity, metrics->sensitivity) << ThresholdRuleText(rule);
    EXPECT_DOUBLE_EQ(point->specificity, metrics->specificity) << ThresholdRuleText(rule);
    if (rule.method == ThresholdMethod::kTargetSensitivity) {
      EXPECT_GE(point->sensitivity, rule.target_sensitivity);
      // One bin higher no longer reaches the target.
      absl::StatusOr<BinaryMetrics> above =
          ComputeBinaryMetrics(labels, scores, point->threshold + 0.001);
      ASSERT_TRUE(above.ok());
      EXPECT_LT(above->sensitivity, rule.target_sensitivity);
    } else {
      for (double other : {0.1, 0.25, 0.4, 0.5, 0.6, 0.8}) {
        absl::StatusOr<BinaryMetrics> at = ComputeBinaryMetrics(labels, scores, other);
        ASSERT_TRUE(at.ok());
        EXPECT_LE(at->sensitivity + at->specificity,
                  point->sensitivity + point->specificity + 1e-12)
            << other;
      }
    }
  }
}

TEST(ChooseOperatingThresholdTest, RefusesEmptyHistogramsAndMissingClasses) {
  EXPECT_THAT(ChooseOperatingThreshold(ScoreHistogram(), ThresholdRule{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  absl::StatusOr<ScoreHistogram> negatives_only = ScoreHistogram::FromScores({0, 0}, {0.1f, 0.7f});
  ASSERT_TRUE(negatives_only.ok());
  EXPECT_THAT(ChooseOperatingThreshold(*negatives_only, ThresholdRule{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("both classes"), HasSubstr("0 of class 1"))));
  EXPECT_THAT(ChooseOperatingThreshold(Example(), Sensitivity(0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(0, 1]")));
}

TEST(ThresholdRuleTest, ParsesAndPrints) {
  absl::StatusOr<ThresholdRule> rule = ParseThresholdRule("youden");
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->method, ThresholdMethod::kYouden);
  EXPECT_EQ(ThresholdRuleText(*rule), "youden");

  for (const char* text : {"sensitivity:0.95", "sensitivity>=0.95"}) {
    rule = ParseThresholdRule(text);
    ASSERT_TRUE(rule.ok()) << rule.status();
    EXPECT_EQ(rule->method, ThresholdMethod::kTargetSensitivity);
    EXPECT_DOUBLE_EQ(rule->target_sensitivity, 0.95);
    EXPECT_EQ(ThresholdRuleText(*rule), "sensitivity>=0.95");
  }
  EXPECT_STREQ(ThresholdMethodName(ThresholdMethod::kTargetSensitivity), "sensitivity");

  EXPECT_THAT(ParseThresholdRule("f1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'f1'"), HasSubstr("youden"), HasSubstr("sensitivity:"))));
  EXPECT_THAT(ParseThresholdRule("sensitivity"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown")));
  EXPECT_THAT(ParseThresholdRule("sensitivity:high"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a number")));
  EXPECT_THAT(ParseThresholdRule("sensitivity:1.5"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(0, 1]")));
}

TEST(StoredThresholdTest, MetadataRoundTrips) {
  OperatingPoint point;
  point.threshold = 0.374;
  point.rule = Sensitivity(0.95);
  const std::map<std::string, std::string> metadata = OperatingThresholdMetadata(point);
  EXPECT_EQ(metadata.at("operating_threshold"), "0.374");
  EXPECT_EQ(metadata.at("operating_threshold_method"), "sensitivity>=0.95");
  absl::StatusOr<std::optional<StoredThreshold>> stored = StoredThresholdOf(metadata);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_TRUE(stored->has_value());
  EXPECT_DOUBLE_EQ((*stored)->threshold, 0.374);
  EXPECT_EQ((*stored)->method, "sensitivity>=0.95");
}

TEST(StoredThresholdTest, AbsentIsNulloptAndMalformedIsRefused) {
  absl::StatusOr<std::optional<StoredThreshold>> stored = StoredThresholdOf({{"arch", "cnn"}});
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_FALSE(stored->has_value());
  stored = StoredThresholdOf({{"operating_threshold", "0.25"}});
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->method, "");
  EXPECT_THAT(StoredThresholdOf({{"operating_threshold", "high"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("operating_threshold"), HasSubstr("'high'"))));
  EXPECT_THAT(StoredThresholdOf({{"operating_threshold", "1.2"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[0, 1]")));
}

}  // namespace
}  // namespace fedmi
