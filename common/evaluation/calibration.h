// Calibration of a binary classifier's P(class 1): does a predicted 0.8 come
// true 80% of the time?
//
//  - Brier score: mean of (p_i - y_i)^2 over examples, with p_i = P(class 1)
//    and y_i in {0, 1}. 0 is perfect, 0.25 is what always saying 0.5 scores;
//    it mixes calibration and discrimination.
//  - Expected calibration error (ECE, Guo et al. 2017, "On Calibration of
//    Modern Neural Networks"), with kCalibrationBins equal-width bins over
//    [0, 1]: sum over bins of (n_b / n) * |mean p in b - share of class 1 in
//    b|. Definition used here, for binary tasks: the binned quantity is
//    P(class 1) and the observed value the frequency of class 1 (the
//    reliability diagram of the positive class), NOT Guo's top-label
//    version (max(p, 1 - p) against accuracy), which folds the two halves
//    of the diagram onto each other. Bin b holds p in [b / bins,
//    (b + 1) / bins), the last bin also 1.0.
//
// Pure functions; thread-safe. Errors are InvalidArgument.
#ifndef FEDMI_COMMON_EVALUATION_CALIBRATION_H_
#define FEDMI_COMMON_EVALUATION_CALIBRATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

inline constexpr int kCalibrationBins = 15;

// One bin of a reliability diagram.
struct ReliabilityBin {
  double lower = 0;  // bin edges in P(class 1)
  double upper = 0;
  int64_t count = 0;
  double mean_predicted = 0;      // mean P(class 1) in the bin; NaN when empty
  double observed_frequency = 0;  // share of class 1 in the bin; NaN when empty
};

struct Calibration {
  int64_t examples = 0;
  double brier = 0;
  double ece = 0;
  std::vector<ReliabilityBin> bins;  // all `bins` of them, empty ones too
};

// Brier score, ECE and reliability bins of prob_positive[i] = P(class 1)
// against labels[i] in {0, 1}. InvalidArgument when the sizes differ, there
// are no examples, a label is not 0 or 1, a probability is NaN or outside
// [0, 1], or bins <= 0.
absl::StatusOr<Calibration> ComputeCalibration(const std::vector<int64_t>& labels,
                                               const std::vector<float>& prob_positive,
                                               int bins = kCalibrationBins);

}  // namespace fedmi

#endif  // FEDMI_COMMON_EVALUATION_CALIBRATION_H_
