#include "coordinator/evaluation_summary.h"

#include <cmath>
#include <optional>

#include "common/evaluation/segmentation_metrics.h"

namespace fedmi {
namespace {

struct MetricField {
  const char* name;
  double (v1::Metrics::*get)() const;
  void (v1::Metrics::*set)(double);
};

constexpr MetricField kMetricFields[] = {
    {"loss", &v1::Metrics::loss, &v1::Metrics::set_loss},
    {"auc", &v1::Metrics::auc, &v1::Metrics::set_auc},
    {"accuracy", &v1::Metrics::accuracy, &v1::Metrics::set_accuracy},
    {"sensitivity", &v1::Metrics::sensitivity, &v1::Metrics::set_sensitivity},
    {"specificity", &v1::Metrics::specificity, &v1::Metrics::set_specificity},
    {"f1", &v1::Metrics::f1, &v1::Metrics::set_f1},
};

// Pixels a mask may have: 4096 x 4096 (no run's input is larger), so the
// sums of any number of honest reports stay far from int64 overflow.
constexpr int64_t kMaxMaskPixels = int64_t{4096} * 4096;

// A site's overlap counts, when they could come from real masks of exactly
// the site's validation images: SegmentationCounts::Check, images equal to
// examples, and no more foreground than kMaxMaskPixels per image.
std::optional<SegmentationCounts> CountsOf(const v1::Metrics& part) {
  const v1::SegmentationOverlap& overlap = part.overlap();
  SegmentationCounts counts;
  counts.images = overlap.images();
  counts.intersection = overlap.intersection();
  counts.prediction = overlap.predicted();
  counts.truth = overlap.truth();
  counts.dice_sum = overlap.image_dice_sum();
  if (!counts.Check().ok() || !std::isfinite(counts.dice_sum) || counts.images != part.examples() ||
      counts.prediction / kMaxMaskPixels > counts.images ||
      counts.truth / kMaxMaskPixels > counts.images) {
    return std::nullopt;
  }
  return counts;
}

// Sets the pooled Dice, IoU, mean image Dice and summed overlap of the
// segmentation reports among `parts`; returns how many were left out.
int PoolSegmentation(const std::vector<v1::Metrics>& parts, v1::Metrics* pooled) {
  SegmentationCounts sum;
  int left_out = 0;
  bool any = false;
  for (const v1::Metrics& part : parts) {
    if (!part.has_overlap()) continue;
    std::optional<SegmentationCounts> counts = CountsOf(part);
    if (!counts || !sum.Merge(*counts).ok()) {
      ++left_out;
      continue;
    }
    any = true;
  }
  if (!any) return left_out;
  pooled->set_dice(sum.PooledDice());
  pooled->set_iou(sum.PooledIou());
  pooled->set_mean_image_dice(sum.MeanDice());
  v1::SegmentationOverlap* overlap = pooled->mutable_overlap();
  overlap->set_intersection(sum.intersection);
  overlap->set_predicted(sum.prediction);
  overlap->set_truth(sum.truth);
  overlap->set_images(sum.images);
  overlap->set_image_dice_sum(sum.dice_sum);
  return left_out;
}

}  // namespace

v1::Metrics WeightedMean(const std::vector<v1::Metrics>& parts) {
  v1::Metrics mean;
  int64_t examples = 0;
  for (const auto& part : parts) examples += part.examples();
  mean.set_examples(examples);
  for (const MetricField& field : kMetricFields) {
    double sum = 0, weight = 0;
    for (const auto& part : parts) {
      double value = (part.*field.get)();
      if (part.examples() > 0 && std::isfinite(value)) {
        sum += value * part.examples();
        weight += part.examples();
      }
    }
    (mean.*field.set)(weight > 0 ? sum / weight : std::nan(""));
  }
  return mean;
}

v1::Metrics PooledEvaluation(const std::vector<v1::Metrics>& parts, const ThresholdRule& rule,
                             int* ignored) {
  v1::Metrics pooled = WeightedMean(parts);
  int left_out = PoolSegmentation(parts, &pooled);
  std::optional<ScoreHistogram> sum;
  for (const v1::Metrics& part : parts) {
    if (part.negative_score_counts_size() == 0 && part.positive_score_counts_size() == 0) {
      continue;
    }
    absl::StatusOr<ScoreHistogram> histogram = ScoreHistogram::FromCounts(
        {part.negative_score_counts().begin(), part.negative_score_counts().end()},
        {part.positive_score_counts().begin(), part.positive_score_counts().end()});
    // Every honest site sends kDefaultScoreBins bins counting its
    // validation examples once: anything else could only skew the choice.
    if (!histogram.ok() || histogram->bins() != kDefaultScoreBins ||
        histogram->negatives() + histogram->positives() != part.examples()) {
      ++left_out;
    } else if (!sum) {
      sum = *std::move(histogram);
    } else if (!sum->Merge(*histogram).ok()) {
      ++left_out;
    }
  }
  if (ignored != nullptr) *ignored = left_out;
  if (!sum) return pooled;
  absl::StatusOr<OperatingPoint> point = ChooseOperatingThreshold(*sum, rule);
  if (!point.ok()) return pooled;
  pooled.set_operating_threshold(point->threshold);
  pooled.set_operating_sensitivity(point->sensitivity);
  pooled.set_operating_specificity(point->specificity);
  return pooled;
}

nlohmann::json MetricsJson(const v1::Metrics& metrics) {
  nlohmann::json out = {{"examples", metrics.examples()}};
  for (const MetricField& field : kMetricFields) {
    const double value = (metrics.*field.get)();
    out[field.name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  }
  if (metrics.has_operating_threshold()) {
    out["operating_threshold"] = metrics.operating_threshold();
    out["operating_sensitivity"] = metrics.operating_sensitivity();
    out["operating_specificity"] = metrics.operating_specificity();
  }
  if (metrics.has_overlap()) {
    for (const auto& [name, value] : {std::pair<const char*, double>{"dice", metrics.dice()},
                                      {"iou", metrics.iou()},
                                      {"mean_image_dice", metrics.mean_image_dice()}}) {
      out[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
    }
  }
  return out;
}

}  // namespace fedmi
