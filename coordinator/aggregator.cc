// MakeAggregator and the facts about strategies that validation needs.
#include "coordinator/aggregator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "common/runspec/strategy_names.h"
#include "coordinator/aggregator_internal.h"
#include "coordinator/krum_aggregator.h"
#include "coordinator/median_aggregator.h"
#include "coordinator/norm_bounded_aggregator.h"
#include "coordinator/trimmed_mean_aggregator.h"

namespace fedmi {
namespace {

constexpr const char* kFedAvg = kFedAvgStrategy;
constexpr const char* kMedian = kMedianStrategy;
constexpr const char* kTrimmedMean = kTrimmedMeanStrategy;
constexpr const char* kKrum = kKrumStrategy;

bool IsKrum(const std::string& strategy) { return ReadsByzantineSites(strategy); }

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
  if (ReadsNormBound(strategy)) return NormBoundedAggregator::CheckNormBound(options.norm_bound);
  return absl::OkStatus();
}

absl::Status CheckStrategyName(const std::string& strategy) {
  if (std::find(std::begin(kAggregationStrategies), std::end(kAggregationStrategies), strategy) !=
      std::end(kAggregationStrategies)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown aggregation strategy '", strategy,
                   "'; known strategies: ", absl::StrJoin(kAggregationStrategies, ", ")));
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
  if (ReadsNormBound(strategy)) {
    if (options.global_model_path.empty()) {
      return absl::InvalidArgumentError(
          "norm_bounded needs the round's global model (AggregatorOptions.global_model_path): "
          "it measures each site's change against it");
    }
    return std::make_unique<NormBoundedAggregator>(options.norm_bound, options.global_model_path);
  }
  RETURN_IF_ERROR(CheckStrategyName(strategy));
  return absl::InternalError(absl::StrCat("strategy '", strategy, "' has no aggregator"));
}

absl::StatusOr<std::unique_ptr<Aggregator>> MakeAggregator(const std::string& strategy) {
  return MakeAggregator(strategy, AggregatorOptions());
}

int32_t MinUpdatesFor(const std::string& strategy, const AggregatorOptions& options) {
  if (IsKrum(strategy)) return KrumAggregator::MinUpdates(KrumOptionsFor(strategy, options));
  return 1;
}

bool StrategyNeedsIndividualUpdates(const std::string& strategy) {
  return NeedsEachSiteUpdate(strategy) && CheckStrategyName(strategy).ok();
}

}  // namespace fedmi
