#include "coordinator/evaluation_summary.h"

#include <cmath>

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

nlohmann::json MetricsJson(const v1::Metrics& metrics) {
  nlohmann::json out = {{"examples", metrics.examples()}};
  for (const MetricField& field : kMetricFields) {
    const double value = (metrics.*field.get)();
    out[field.name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  }
  return out;
}

}  // namespace fedmi
