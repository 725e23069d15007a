#include "coordinator/evaluation_summary.h"

#include <cmath>
#include <optional>

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
  std::optional<ScoreHistogram> sum;
  int left_out = 0;
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
  return out;
}

}  // namespace fedmi
