#include "cli/model_runner.h"

#include "absl/strings/str_cat.h"
#include "cli/command_support.h"

namespace fedmi::cli {

absl::Status TrainingUnavailableError(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("`", what,
                   "` runs models, and this fedmi was built without training "
                   "(cmake -DFEDMI_WITH_TRAINING=ON)"));
}

absl::StatusOr<std::optional<StoredThreshold>> StoredThresholdOfFile(
    const std::string& model_path, const SplitPredictions& predictions) {
  absl::StatusOr<std::optional<StoredThreshold>> stored = StoredThresholdOf(predictions.metadata);
  if (!stored.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(model_path, ": ", stored.status().message()));
  }
  return stored;
}

absl::StatusOr<std::optional<StoredThresholdMetrics>> MetricsAtStoredThreshold(
    const std::string& model_path, const SplitPredictions& predictions) {
  absl::StatusOr<std::optional<StoredThreshold>> stored =
      StoredThresholdOfFile(model_path, predictions);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::nullopt;
  absl::StatusOr<BinaryMetrics> metrics =
      ComputeBinaryMetrics(predictions.labels, predictions.prob_positive, (*stored)->threshold);
  if (!metrics.ok()) return metrics.status();
  return StoredThresholdMetrics{**stored, *metrics};
}

nlohmann::json StoredThresholdMetricsJson(const StoredThresholdMetrics& result) {
  const BinaryMetrics& m = result.metrics;
  return {{"threshold", result.stored.threshold},     {"method", result.stored.method},
          {"accuracy", JsonNumber(m.accuracy)},       {"sensitivity", JsonNumber(m.sensitivity)},
          {"specificity", JsonNumber(m.specificity)}, {"f1", JsonNumber(m.f1)}};
}

}  // namespace fedmi::cli
