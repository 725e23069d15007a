// Coordinate-wise trimmed mean (Yin et al., "Byzantine-Robust Distributed
// Learning: Towards Optimal Statistical Rates", ICML 2018): for every
// parameter, the k smallest and the k largest of the n sites' values are
// dropped and the rest averaged, unweighted, with k = floor(trim_fraction x n).
// So up to k sites cannot drag any parameter outside the range of the honest
// sites' values, whatever they send. With trim_fraction 0.2, 5 sites trim one
// at each end; fewer than 5 trim none (k = 0), which is the plain mean.
//
// The kept values are summed in ascending order in double and the sum divided
// once, rounded to float32: the result depends only on the multiset of values,
// not on the order the sites' updates arrived in, and ties between equal
// values cannot change it.
//
// Spooling, memory, disk, refusals and thread-safety are those of
// SpooledAggregator (coordinator/spooled_aggregator.h). Finish holds N x C
// floats for N updates and a chunk of C parameters (64 Ki by default:
// 256 KiB per site), plus an output chunk; nothing grows with the model.
//
// The median (coordinator/median_aggregator.h) is the special case
// k = floor((n - 1) / 2).
#ifndef FEDMI_COORDINATOR_TRIMMED_MEAN_AGGREGATOR_H_
#define FEDMI_COORDINATOR_TRIMMED_MEAN_AGGREGATOR_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/aggregator.h"
#include "coordinator/spooled_aggregator.h"

namespace fedmi {

class TrimmedMeanAggregator : public SpooledAggregator {
 public:
  // `trim_fraction` must be in [0, 0.5); Begin refuses the round otherwise.
  TrimmedMeanAggregator(double trim_fraction, SpoolOptions spool);

  // InvalidArgument unless 0 <= trim_fraction < 0.5.
  static absl::Status CheckTrimFraction(double trim_fraction);
  // k = floor(trim_fraction x n): the values dropped at each end.
  static size_t TrimmedPerEnd(double trim_fraction, size_t n);

 protected:
  // For the median, which trims by count, not by fraction.
  TrimmedMeanAggregator(std::string strategy, double trim_fraction, SpoolOptions spool);

  // The values dropped at each end of a coordinate of `n` values.
  virtual size_t TrimFor(size_t n) const { return TrimmedPerEnd(trim_fraction_, n); }

  absl::Status CheckOptions() const override { return CheckTrimFraction(trim_fraction_); }
  // FailedPrecondition when 2k >= n: nothing would be left to average.
  absl::Status CheckUpdateCount(size_t updates) const override;
  absl::Status WriteAggregate(BundleFileWriter& writer) override;

 private:
  const double trim_fraction_;
};

// The mean of `values` without its `trimmed` smallest and `trimmed` largest
// (2 x trimmed < values.size()), summed in ascending order in double.
// Reorders `values`.
float TrimmedMeanOf(std::vector<float>& values, size_t trimmed);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_TRIMMED_MEAN_AGGREGATOR_H_
