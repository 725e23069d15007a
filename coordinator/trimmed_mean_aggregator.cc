#include "coordinator/trimmed_mean_aggregator.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/runspec/strategy_names.h"

namespace fedmi {
namespace {

constexpr const char* kTrimmedMean = kTrimmedMeanStrategy;

}  // namespace

float TrimmedMeanOf(std::vector<float>& values, size_t trimmed) {
  const auto first = values.begin() + static_cast<std::ptrdiff_t>(trimmed);
  const auto last = values.end() - static_cast<std::ptrdiff_t>(trimmed);
  if (trimmed > 0) {
    // The `trimmed` smallest before `first`, then the `trimmed` largest from
    // `last` on; only the few kept values need sorting.
    std::nth_element(values.begin(), first, values.end());
    std::nth_element(first, last, values.end());
  }
  std::sort(first, last);
  double sum = 0;
  for (auto it = first; it != last; ++it) sum += static_cast<double>(*it);
  return static_cast<float>(sum / static_cast<double>(last - first));
}

TrimmedMeanAggregator::TrimmedMeanAggregator(double trim_fraction, SpoolOptions spool)
    : TrimmedMeanAggregator(kTrimmedMean, trim_fraction, std::move(spool)) {}

TrimmedMeanAggregator::TrimmedMeanAggregator(std::string strategy, double trim_fraction,
                                             SpoolOptions spool)
    : SpooledAggregator(std::move(strategy), std::move(spool)), trim_fraction_(trim_fraction) {}

absl::Status TrimmedMeanAggregator::CheckTrimFraction(double trim_fraction) {
  // Written so that NaN fails too.
  if (trim_fraction >= 0 && trim_fraction < 0.5) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(kTrimmedMean, ": trim_fraction must be in [0, 0.5), got ", trim_fraction,
                   " (the fraction of sites dropped at each end of every parameter)"));
}

size_t TrimmedMeanAggregator::TrimmedPerEnd(double trim_fraction, size_t n) {
  return static_cast<size_t>(std::floor(trim_fraction * static_cast<double>(n)));
}

absl::Status TrimmedMeanAggregator::CheckUpdateCount(size_t updates) const {
  const size_t trimmed = TrimFor(updates);
  // Unreachable with trim_fraction < 0.5 in exact arithmetic; a guard against
  // rounding and against subclasses.
  if (2 * trimmed < updates) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(strategy(), " round ", round(), ": trimming ", trimmed, " of ", updates,
                   " updates at each end leaves nothing to average"));
}

absl::Status TrimmedMeanAggregator::WriteAggregate(BundleFileWriter& writer) {
  const size_t sites = static_cast<size_t>(accepted());
  const size_t trimmed = TrimFor(sites);
  std::vector<size_t> all(sites);
  for (size_t s = 0; s < sites; ++s) all[s] = s;
  std::vector<float> column(sites);  // every site's value of one parameter
  std::vector<float> out;
  RETURN_IF_ERROR(Allocate(out, chunk_parameters(), "the output chunk"));
  return ForEachChunk(all, [&](uint64_t /*first*/, size_t count, const float* slices) {
    for (size_t i = 0; i < count; ++i) {
      for (size_t s = 0; s < sites; ++s) column[s] = slices[s * count + i];
      out[i] = TrimmedMeanOf(column, trimmed);
    }
    return WriteFloats(writer, out.data(), count);
  });
}

}  // namespace fedmi
