// MakeAggregator and the facts about strategies that validation needs.
#include "coordinator/aggregator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "coordinator/aggregator_internal.h"
#include "coordinator/krum_aggregator.h"
#include "coordinator/median_aggregator.h"
#include "coordinator/trimmed_mean_aggregator.h"

namespace fedmi {
namespace {

constexpr char kFedAvg[] = "fedavg";
constexpr char kMedian[] = "median";
constexpr char kTrimmedMean[] = "trimmed_mean";
constexpr char kKrum[] = "krum";
constexpr char kMultiKrum[] = "multikrum";
constexpr const char* kKnownStrategies[] = {kFedAvg, kMedian, kTrimmedMean, kKrum, kMultiKrum};

bool IsKrum(const std::string& strategy) { return strategy == kKrum || strategy == kMultiKrum; }

KrumOptions KrumOptionsFor(const std::string& strategy, const AggregatorOptions& options) {
  KrumOptions krum;
  krum.byzantine_sites = options.byzantine_sites;
  krum.selected = strategy == kKrum ? 1 : options.multikrum_selected;
  krum.spool = options.spool;
  return krum;
}

}  // namespace

absl::Status ValidateAggregatorOptions(const std::string& strategy,
                                       const AggregatorOptions& options) {
  if (strategy == kTrimmedMean) {
    return TrimmedMeanAggregator::CheckTrimFraction(options.trim_fraction);
  }
  if (IsKrum(strategy))
    return KrumAggregator::CheckOptions(strategy, KrumOptionsFor(strategy, options));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy,
                                                           const AggregatorOptions& options) {
  RETURN_IF_ERROR(ValidateAggregatorOptions(strategy, options));
  if (strategy == kFedAvg) return aggregator_internal::MakeFedAvgAggregator();
  if (strategy == kMedian) return std::make_unique<MedianAggregator>(options.spool);
  if (strategy == kTrimmedMean) {
    return std::make_unique<TrimmedMeanAggregator>(options.trim_fraction, options.spool);
  }
  if (IsKrum(strategy)) {
    return std::make_unique<KrumAggregator>(strategy, KrumOptionsFor(strategy, options));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown aggregation strategy '", strategy,
                   "'; known strategies: ", absl::StrJoin(kKnownStrategies, ", ")));
}

absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy) {
  return MakeAggregator(strategy, AggregatorOptions());
}

int32_t MinUpdatesFor(const std::string& strategy, const AggregatorOptions& options) {
  if (IsKrum(strategy)) return KrumAggregator::MinUpdates(KrumOptionsFor(strategy, options));
  return 1;
}

bool StrategyNeedsIndividualUpdates(const std::string& strategy) {
  return strategy == kMedian || strategy == kTrimmedMean || IsKrum(strategy);
}

}  // namespace fedmi
