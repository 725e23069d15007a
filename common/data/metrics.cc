#include "common/data/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

constexpr char kNaNPredictionPayload[] = "type.fedmi.dev/nan-prediction";

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Ratio(int64_t numerator, int64_t denominator) {
  return denominator == 0 ? kNaN
                          : static_cast<double>(numerator) / static_cast<double>(denominator);
}

}  // namespace

double RocAuc(const std::vector<int64_t>& labels, const std::vector<float>& scores) {
  if (labels.size() != scores.size()) return kNaN;
  int64_t positives = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if ((labels[i] != 0 && labels[i] != 1) || std::isnan(scores[i])) return kNaN;
    positives += labels[i];
  }
  const int64_t negatives = static_cast<int64_t>(labels.size()) - positives;
  if (positives == 0 || negatives == 0) return kNaN;

  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&scores](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Sum of the 1-based ranks of the positives, tied scores sharing the
  // average of the ranks they span.
  double positive_rank_sum = 0;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin + 1;
    while (end < order.size() && scores[order[end]] == scores[order[begin]]) ++end;
    const double average_rank = (static_cast<double>(begin + 1) + static_cast<double>(end)) / 2.0;
    for (size_t i = begin; i < end; ++i) {
      if (labels[order[i]] == 1) positive_rank_sum += average_rank;
    }
    begin = end;
  }
  const double p = static_cast<double>(positives);
  const double u = positive_rank_sum - p * (p + 1) / 2.0;
  return u / (p * static_cast<double>(negatives));
}

bool IsNaNPredictionError(const absl::Status& status) {
  return status.GetPayload(kNaNPredictionPayload).has_value();
}

absl::StatusOr<BinaryMetrics> ComputeBinaryMetrics(const std::vector<int64_t>& labels,
                                                   const std::vector<float>& prob_positive,
                                                   double threshold) {
  if (labels.size() != prob_positive.size()) {
    return absl::InvalidArgumentError(absl::StrCat("metrics got ", labels.size(), " labels but ",
                                                   prob_positive.size(), " probabilities"));
  }
  if (labels.empty()) return absl::InvalidArgumentError("metrics got no examples");
  if (std::isnan(threshold)) return absl::InvalidArgumentError("metrics threshold is NaN");
  int64_t tp = 0, tn = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", labels[i], " at example ", i, " is not 0 or 1"));
    }
    if (std::isnan(prob_positive[i])) {
      absl::Status nan =
          absl::InvalidArgumentError(absl::StrCat("probability at example ", i, " is NaN"));
      nan.SetPayload(kNaNPredictionPayload, absl::Cord("1"));
      return nan;
    }
    const bool predicted_positive = prob_positive[i] >= threshold;
    if (labels[i] == 1) {
      (predicted_positive ? tp : fn) += 1;
    } else {
      (predicted_positive ? fp : tn) += 1;
    }
  }
  BinaryMetrics metrics;
  metrics.examples = static_cast<int64_t>(labels.size());
  metrics.auc = RocAuc(labels, prob_positive);
  metrics.accuracy = Ratio(tp + tn, metrics.examples);
  metrics.sensitivity = Ratio(tp, tp + fn);
  metrics.specificity = Ratio(tn, tn + fp);
  metrics.f1 = Ratio(2 * tp, 2 * tp + fp + fn);
  return metrics;
}

}  // namespace fedmi
