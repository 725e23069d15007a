// Evaluation metrics for binary classifiers (e.g. normal vs. pneumonia).
//
// Undefined values: a metric whose denominator is zero is NaN, never 0, so a
// missing class cannot masquerade as a perfect or useless model:
//  - auc is NaN when only one class is present;
//  - sensitivity is NaN when there are no positives (TP + FN == 0);
//  - specificity is NaN when there are no negatives (TN + FP == 0);
//  - f1 is NaN when there are neither positives nor positive predictions
//    (2TP + FP + FN == 0).
// accuracy is always defined because the input must be non-empty.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_DATA_METRICS_H_
#define FEDMI_COMMON_DATA_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

struct BinaryMetrics {
  int64_t examples = 0;
  double auc = 0;
  double accuracy = 0;
  double sensitivity = 0;  // TP / (TP + FN), recall of class 1
  double specificity = 0;  // TN / (TN + FP)
  double f1 = 0;           // F1 of class 1: 2TP / (2TP + FP + FN)
};

// Metrics of predicting class 1 when prob_positive[i] >= threshold, against
// labels[i] in {0, 1}. AUC uses the scores themselves (see RocAuc).
// InvalidArgument when the vectors differ in size or are empty, a label is
// not 0 or 1, a probability or the threshold is NaN.
absl::StatusOr<BinaryMetrics> ComputeBinaryMetrics(const std::vector<int64_t>& labels,
                                                   const std::vector<float>& prob_positive,
                                                   double threshold = 0.5);

// Whether `status` is ComputeBinaryMetrics' refusal of a NaN probability
// (marked with a payload, which StatusOr and RETURN_IF_ERROR pass on): the
// model itself is broken, as after an attack a strategy let through, rather
// than the data or the caller.
bool IsNaNPredictionError(const absl::Status& status);

// Area under the ROC curve: the probability that a random positive scores
// higher than a random negative, ties counting one half (Mann-Whitney U with
// average ranks). NaN when a class is absent, and also for inputs
// ComputeBinaryMetrics would reject (size mismatch, labels outside {0, 1},
// NaN scores).
double RocAuc(const std::vector<int64_t>& labels, const std::vector<float>& scores);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_METRICS_H_
