#include "coordinator/evaluation_summary.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

// The 1000 bins a site sends for counts given per tenth of [0, 1]: tenth d
// lands in bin 100 d + 99 (scores just below (d + 1) / 10). Counts of
// another length are sent as they are.
std::vector<int64_t> Bins(const std::vector<int64_t>& tenths) {
  if (tenths.size() != 10) return tenths;
  std::vector<int64_t> bins(kDefaultScoreBins, 0);
  for (size_t d = 0; d < tenths.size(); ++d) bins[100 * d + 99] = tenths[d];
  return bins;
}

// A site's report with `examples` examples and score counts per tenth.
v1::Metrics Report(int64_t examples, double auc, const std::vector<int64_t>& negatives,
                   const std::vector<int64_t>& positives) {
  v1::Metrics metrics;
  metrics.set_examples(examples);
  metrics.set_auc(auc);
  for (int64_t count : Bins(negatives)) metrics.add_negative_score_counts(count);
  for (int64_t count : Bins(positives)) metrics.add_positive_score_counts(count);
  return metrics;
}

TEST(EvaluationSummaryTest, WeightedMeanSkipsUndefinedValues) {
  v1::Metrics a, b;
  a.set_examples(30);
  a.set_auc(0.9);
  b.set_examples(10);
  b.set_auc(std::nan(""));
  const v1::Metrics mean = WeightedMean({a, b});
  EXPECT_EQ(mean.examples(), 40);
  EXPECT_DOUBLE_EQ(mean.auc(), 0.9) << "a site with one class does not poison the AUC";
}

TEST(EvaluationSummaryTest, TheThresholdIsChosenOnThePooledHistogramsNotPerSite) {
  // Site A's negatives score below 0.1 and its positives below 0.8; site
  // B's negatives reach 0.7 and its positives score high. Each alone would
  // put the threshold elsewhere; pooled, every threshold in (0.699, 0.799]
  // separates the classes, and the one closest to 0.5 is 0.7.
  const v1::Metrics a =
      Report(20, 0.99, {10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 10, 0, 0});
  const v1::Metrics b =
      Report(20, 0.99, {0, 0, 0, 0, 0, 0, 10, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 10});
  int ignored = -1;
  const v1::Metrics pooled = PooledEvaluation({a, b}, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 0);
  ASSERT_TRUE(pooled.has_operating_threshold());
  EXPECT_DOUBLE_EQ(pooled.operating_threshold(), 0.7);
  EXPECT_DOUBLE_EQ(pooled.operating_sensitivity(), 1.0);
  EXPECT_DOUBLE_EQ(pooled.operating_specificity(), 1.0);
  EXPECT_EQ(pooled.negative_score_counts_size(), 0) << "the aggregate keeps no histogram";
  EXPECT_EQ(pooled.examples(), 40);

  ThresholdRule sensitive;
  sensitive.method = ThresholdMethod::kTargetSensitivity;
  sensitive.target_sensitivity = 0.5;
  const v1::Metrics at_half = PooledEvaluation({a, b}, sensitive);
  EXPECT_DOUBLE_EQ(at_half.operating_threshold(), 0.999) << "the highest reaching 50%";
  EXPECT_DOUBLE_EQ(at_half.operating_sensitivity(), 0.5);
}

TEST(EvaluationSummaryTest, AHistogramThatDoesNotFitIsLeftOutNotTrusted) {
  const v1::Metrics a =
      Report(20, 0.9, {10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 10});
  const v1::Metrics other_bins = Report(4, 0.9, {2, 0}, {0, 2});
  const v1::Metrics negative =
      Report(4, 0.9, {-5, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 9});
  int ignored = 0;
  const v1::Metrics pooled = PooledEvaluation({a, other_bins, negative}, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 2);
  ASSERT_TRUE(pooled.has_operating_threshold());
  EXPECT_DOUBLE_EQ(pooled.operating_specificity(), 1.0) << "from site A's counts alone";
}

TEST(EvaluationSummaryTest, NoThresholdWithoutHistogramsOrWithOneClass) {
  v1::Metrics plain;
  plain.set_examples(10);
  EXPECT_FALSE(PooledEvaluation({plain}, ThresholdRule()).has_operating_threshold());
  const v1::Metrics only_negatives =
      Report(10, std::nan(""), {5, 5, 0, 0, 0, 0, 0, 0, 0, 0}, std::vector<int64_t>(10, 0));
  const v1::Metrics pooled = PooledEvaluation({only_negatives}, ThresholdRule());
  EXPECT_FALSE(pooled.has_operating_threshold());
  EXPECT_FALSE(MetricsJson(pooled).contains("operating_threshold"));
  v1::Metrics with = pooled;
  with.set_operating_threshold(0.25);
  EXPECT_EQ(MetricsJson(with)["operating_threshold"], 0.25);
}

TEST(EvaluationSummaryTest, AHistogramThatMiscountsTheSitesExamplesIsLeftOut) {
  const v1::Metrics a =
      Report(20, 0.9, {10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 10});
  // Claims 5 examples but counts 1000 negatives near 0.9: it would drag the
  // threshold wherever it likes.
  const v1::Metrics inflated =
      Report(5, 0.9, {0, 0, 0, 0, 0, 0, 0, 0, 1000, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  int ignored = 0;
  const v1::Metrics pooled = PooledEvaluation({a, inflated}, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 1);
  EXPECT_DOUBLE_EQ(pooled.operating_specificity(), 1.0);
}

}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace {

// Review finding: the first histogram in slot order fixes the bin count, so
// one site sending a 2-bin histogram first makes every honest site's
// 1000-bin histogram "not fit" and be left out:
// the threshold is chosen on the hostile site's counts alone.
TEST(EvaluationSummaryReviewTest, AFirstSiteWithOtherBinsCannotExcludeTheRest) {
  const v1::Metrics hostile = Report(4, 0.9, {0, 2}, {2, 0});
  const v1::Metrics a =
      Report(20, 0.99, {10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 10, 0, 0});
  const v1::Metrics b =
      Report(20, 0.99, {0, 0, 0, 0, 0, 0, 10, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 10});
  int ignored = -1;
  const v1::Metrics pooled = PooledEvaluation({hostile, a, b}, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 1) << "only the odd one out is left out";
  ASSERT_TRUE(pooled.has_operating_threshold());
  EXPECT_DOUBLE_EQ(pooled.operating_threshold(), 0.7) << "chosen on the honest sites' counts";
}

// Review finding: FromCounts and Merge sum int64 counts without an overflow
// check (signed overflow: undefined behaviour). A site sending counts near
// INT64_MAX wraps the totals negative and the honest sites' threshold is
// replaced by garbage instead of the histogram being left out.
TEST(EvaluationSummaryReviewTest, CountsThatOverflowAreLeftOut) {
  const v1::Metrics a =
      Report(20, 0.99, {10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 10, 0, 0});
  const int64_t huge = std::numeric_limits<int64_t>::max();
  const v1::Metrics hostile =
      Report(4, 0.9, {huge, huge, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  int ignored = -1;
  const v1::Metrics pooled = PooledEvaluation({a, hostile}, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 1);
  ASSERT_TRUE(pooled.has_operating_threshold());
  EXPECT_DOUBLE_EQ(pooled.operating_specificity(), 1.0) << "from site A's counts alone";
  EXPECT_GE(pooled.operating_sensitivity(), 0.0);
  EXPECT_LE(pooled.operating_sensitivity(), 1.0);
}

}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace {

// A site's segmentation report as SiteWorker sends it.
v1::Metrics Overlap(int64_t images, int64_t intersection, int64_t predicted, int64_t truth,
                    double image_dice_sum) {
  v1::Metrics m;
  m.set_examples(images);
  m.set_auc(std::nan(""));
  m.set_dice(2.0 * intersection / static_cast<double>(predicted + truth));
  v1::SegmentationOverlap* overlap = m.mutable_overlap();
  overlap->set_images(images);
  overlap->set_intersection(intersection);
  overlap->set_predicted(predicted);
  overlap->set_truth(truth);
  overlap->set_image_dice_sum(image_dice_sum);
  return m;
}

TEST(EvaluationSummarySegmentationTest, DiceIsPooledFromTheSitesPixelCounts) {
  // Site 1: Dice 2*90/(100+100) = 0.9 on 10 images; site 2: 2*10/(40+60) =
  // 0.2 on 30 images. Pooled over all pixels: 2*100/(140+160) = 2/3, not
  // the example-weighted mean of per-site Dice (0.375).
  const std::vector<v1::Metrics> parts = {Overlap(10, 90, 100, 100, 9.0),
                                          Overlap(30, 10, 40, 60, 6.0)};
  int ignored = -1;
  const v1::Metrics pooled = PooledEvaluation(parts, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 0);
  EXPECT_EQ(pooled.examples(), 40);
  EXPECT_DOUBLE_EQ(pooled.dice(), 200.0 / 300.0);
  EXPECT_DOUBLE_EQ(pooled.iou(), 100.0 / (300.0 - 100.0));
  EXPECT_DOUBLE_EQ(pooled.mean_image_dice(), 15.0 / 40.0);
  EXPECT_EQ(pooled.overlap().intersection(), 100);
  EXPECT_EQ(pooled.overlap().predicted(), 140);
  EXPECT_EQ(pooled.overlap().truth(), 160);
  EXPECT_EQ(pooled.overlap().images(), 40);
  EXPECT_TRUE(std::isnan(pooled.auc()));
  EXPECT_FALSE(pooled.has_operating_threshold());

  const nlohmann::json json = MetricsJson(pooled);
  EXPECT_DOUBLE_EQ(json["dice"].get<double>(), 200.0 / 300.0);
  EXPECT_DOUBLE_EQ(json["mean_image_dice"].get<double>(), 15.0 / 40.0);
  EXPECT_TRUE(json["auc"].is_null());
  EXPECT_FALSE(MetricsJson(parts[0]).contains("operating_threshold"));
  EXPECT_FALSE(MetricsJson(v1::Metrics()).contains("dice")) << "classification has none";
}

TEST(EvaluationSummarySegmentationTest, CountsThatCannotComeFromMasksAreLeftOut) {
  const v1::Metrics honest = Overlap(10, 90, 100, 100, 9.0);
  std::vector<v1::Metrics> liars = {
      Overlap(10, 150, 100, 200, 9.0),          // more overlap than prediction
      Overlap(10, -1, 100, 100, 9.0),           // negative
      Overlap(12, 90, 100, 100, 9.0),           // images != examples
      Overlap(10, 90, 100, 100, 11.0),          // a Dice sum above the image count
      Overlap(1, 0, int64_t{1} << 40, 0, 0.0),  // more pixels than any image has
  };
  liars[2].set_examples(10);
  for (const v1::Metrics& liar : liars) {
    int ignored = -1;
    const v1::Metrics pooled = PooledEvaluation({honest, liar}, ThresholdRule(), &ignored);
    EXPECT_EQ(ignored, 1) << liar.DebugString();
    EXPECT_DOUBLE_EQ(pooled.dice(), 0.9) << liar.DebugString();
    EXPECT_EQ(pooled.overlap().images(), 10);
  }
  // Nothing to pool: no Dice.
  int ignored = -1;
  const v1::Metrics none = PooledEvaluation({liars[0]}, ThresholdRule(), &ignored);
  EXPECT_EQ(ignored, 1);
  EXPECT_FALSE(none.has_overlap());
}

}  // namespace
}  // namespace fedmi
