#include "common/evaluation/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace fedmi {

absl::StatusOr<Calibration> ComputeCalibration(const std::vector<int64_t>& labels,
                                               const std::vector<float>& prob_positive, int bins) {
  if (bins <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("calibration bins must be > 0, got ", bins));
  }
  if (labels.size() != prob_positive.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "calibration got ", labels.size(), " labels but ", prob_positive.size(), " probabilities"));
  }
  if (labels.empty()) return absl::InvalidArgumentError("calibration got no examples");

  std::vector<double> sum_predicted(bins, 0);
  std::vector<int64_t> sum_positive(bins, 0);
  Calibration calibration;
  calibration.examples = static_cast<int64_t>(labels.size());
  calibration.bins.resize(bins);
  double squared_error_sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t label = labels[i];
    const double p = prob_positive[i];
    if (label != 0 && label != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("calibration: label ", label, " of example ", i, " is not 0 or 1"));
    }
    if (!(p >= 0 && p <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("calibration: probability ", p, " of example ", i, " is not in [0, 1]"));
    }
    squared_error_sum += (p - label) * (p - label);
    const int bin = static_cast<int>(std::min<double>(std::floor(p * bins), bins - 1));
    ++calibration.bins[bin].count;
    sum_predicted[bin] += p;
    sum_positive[bin] += label;
  }
  const double n = static_cast<double>(labels.size());
  calibration.brier = squared_error_sum / n;
  for (int b = 0; b < bins; ++b) {
    ReliabilityBin& bin = calibration.bins[b];
    bin.lower = static_cast<double>(b) / bins;
    bin.upper = static_cast<double>(b + 1) / bins;
    if (bin.count == 0) {
      bin.mean_predicted = std::numeric_limits<double>::quiet_NaN();
      bin.observed_frequency = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    const double count = static_cast<double>(bin.count);
    bin.mean_predicted = sum_predicted[b] / count;
    bin.observed_frequency = static_cast<double>(sum_positive[b]) / count;
    calibration.ece += count / n * std::abs(bin.mean_predicted - bin.observed_frequency);
  }
  return calibration;
}

}  // namespace fedmi
