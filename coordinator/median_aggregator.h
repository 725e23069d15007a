// Coordinate-wise median (Yin et al., "Byzantine-Robust Distributed Learning:
// Towards Optimal Statistical Rates", ICML 2018): every parameter of the new
// model is the median of the sites' values for it, so fewer than half of the
// sites cannot drag it arbitrarily far, whatever they send. For an even number
// of sites it is the mean of the two middle values, computed in double and
// rounded to float32. The median is unweighted: Accept ignores `weight` (the
// example count), since weighting by a count a site reports itself would let
// one site outvote the others.
//
// It is the trimmed mean (coordinator/trimmed_mean_aggregator.h) that drops
// k = floor((n - 1) / 2) values at each end, whatever n is. Spooling (Accept
// copies every update to disk, Finish reads the same slice of
// `parameters_per_chunk` values from every spool file at a time), memory
// O(sites x chunk), disk O(sites x model), refusals (non-float32 tensors,
// NaN, infinity: with an even count two infinite middle values would average
// to an infinite or NaN weight) and thread-safety are SpooledAggregator's
// (coordinator/spooled_aggregator.h); its spool directory is
// "fedmi-median-*".
#ifndef FEDMI_COORDINATOR_MEDIAN_AGGREGATOR_H_
#define FEDMI_COORDINATOR_MEDIAN_AGGREGATOR_H_

#include <cstddef>
#include <utility>

#include "coordinator/aggregator.h"
#include "coordinator/trimmed_mean_aggregator.h"

namespace fedmi {

using MedianAggregatorOptions = SpoolOptions;

class MedianAggregator : public TrimmedMeanAggregator {
 public:
  explicit MedianAggregator(MedianAggregatorOptions options)
      : TrimmedMeanAggregator("median", /*trim_fraction=*/0, std::move(options)) {}

 protected:
  // One middle value left for odd n, two for even n.
  size_t TrimFor(size_t n) const override { return (n - 1) / 2; }
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_MEDIAN_AGGREGATOR_H_
