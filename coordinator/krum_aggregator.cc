#include "coordinator/krum_aggregator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi {

KrumAggregator::KrumAggregator(std::string strategy, KrumOptions options)
    : SpooledAggregator(std::move(strategy), options.spool), options_(std::move(options)) {}

absl::Status KrumAggregator::CheckOptions(const std::string& strategy, const KrumOptions& options) {
  if (options.byzantine_sites < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(strategy, ": byzantine_sites must be >= 0, got ", options.byzantine_sites));
  }
  if (options.selected < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(strategy, ": the number of updates selected must be >= 0 (0: n - f), got ",
                     options.selected));
  }
  return absl::OkStatus();
}

int32_t KrumAggregator::MinUpdates(const KrumOptions& options) {
  const int64_t f = options.byzantine_sites;
  const int64_t needed = std::max<int64_t>(2 * f + 3, options.selected + f);
  return static_cast<int32_t>(std::min<int64_t>(needed, INT32_MAX));
}

SiteDecisions KrumAggregator::decisions() const {
  SiteDecisions decisions;
  for (const RankedUpdate& ranked : last_ranking_) {
    if (!ranked.selected) decisions.left_out.push_back(ranked.site);
  }
  return decisions;
}

absl::Status KrumAggregator::CheckUpdateCount(size_t updates) const {
  const int64_t n = static_cast<int64_t>(updates);
  const int64_t f = options_.byzantine_sites;
  if (n < 2 * f + 3) {
    return absl::FailedPreconditionError(absl::StrCat(strategy(), " round ", round(), ": ", n,
                                                      " updates, but tolerating byzantine_sites ",
                                                      f, " needs at least 2f + 3 = ", 2 * f + 3));
  }
  if (options_.selected > n - f) {
    return absl::FailedPreconditionError(absl::StrCat(
        strategy(), " round ", round(), ": cannot select ", options_.selected, " of ", n,
        " updates while tolerating byzantine_sites ", f, " (at most n - f = ", n - f, ")"));
  }
  return absl::OkStatus();
}

absl::Status KrumAggregator::WriteAggregate(BundleFileWriter& writer) {
  const size_t n = static_cast<size_t>(accepted());
  std::vector<double> distances;
  RETURN_IF_ERROR(Allocate(distances, n * n, absl::StrCat(n, " x ", n, " distances")));
  RETURN_IF_ERROR(PairwiseSquaredDistances(distances));
  return WriteMeanOf(Select(distances), writer);
}

absl::Status KrumAggregator::PairwiseSquaredDistances(std::vector<double>& distances) const {
  const size_t n = static_cast<size_t>(accepted());
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  return ForEachChunk(all, [&](uint64_t /*first*/, size_t count, const float* slices) {
    for (size_t i = 0; i < n; ++i) {
      const float* a = slices + i * count;
      for (size_t j = i + 1; j < n; ++j) {
        const float* b = slices + j * count;
        // (a - b)^2 == (b - a)^2 exactly, so the distance does not depend on
        // which of the two arrived first.
        double sum = 0;
        for (size_t t = 0; t < count; ++t) {
          const double d = static_cast<double>(a[t]) - static_cast<double>(b[t]);
          sum += d * d;
        }
        distances[i * n + j] += sum;
      }
    }
    return absl::OkStatus();
  });
}

std::vector<size_t> KrumAggregator::Select(const std::vector<double>& distances) {
  const size_t n = static_cast<size_t>(accepted());
  const size_t f = static_cast<size_t>(options_.byzantine_sites);
  const size_t neighbours = n - f - 2;  // >= 1: CheckUpdateCount ensured n >= 2f + 3
  const size_t m = options_.selected == 0 ? n - f : static_cast<size_t>(options_.selected);

  std::vector<double> scores(n);
  std::vector<double> others;
  others.reserve(n - 1);
  for (size_t i = 0; i < n; ++i) {
    others.clear();
    for (size_t j = 0; j < n; ++j) {
      if (j != i) others.push_back(i < j ? distances[i * n + j] : distances[j * n + i]);
    }
    std::partial_sort(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(neighbours),
                      others.end());
    double score = 0;
    for (size_t k = 0; k < neighbours; ++k) score += others[k];
    scores[i] = score;
  }

  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (scores[x] != scores[y]) return scores[x] < scores[y];
    if (site(x) != site(y)) return site(x) < site(y);
    return x < y;
  });

  last_ranking_.clear();
  for (size_t rank = 0; rank < n; ++rank) {
    last_ranking_.push_back({site(order[rank]), scores[order[rank]], rank < m});
  }
  order.resize(m);
  return order;
}

absl::Status KrumAggregator::WriteMeanOf(const std::vector<size_t>& chosen,
                                         BundleFileWriter& writer) const {
  const double m = static_cast<double>(chosen.size());
  std::vector<float> out;
  RETURN_IF_ERROR(Allocate(out, chunk_parameters(), "the output chunk"));
  return ForEachChunk(chosen, [&](uint64_t /*first*/, size_t count, const float* slices) {
    for (size_t i = 0; i < count; ++i) {
      double sum = 0;  // in rank order, so arrival order cannot change the rounding
      for (size_t k = 0; k < chosen.size(); ++k) sum += static_cast<double>(slices[k * count + i]);
      out[i] = static_cast<float>(sum / m);
    }
    return WriteFloats(writer, out.data(), count);
  });
}

}  // namespace fedmi
