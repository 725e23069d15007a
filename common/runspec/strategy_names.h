// The aggregation strategies a run may name (RunSpec.strategy) and which
// RobustAggregation settings each reads. The coordinator builds them
// (coordinator/aggregator.h); the CLI lists them without linking it.
//
// Constants and pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_STRATEGY_NAMES_H_
#define FEDMI_COMMON_RUNSPEC_STRATEGY_NAMES_H_

#include "absl/strings/string_view.h"

namespace fedmi {

inline constexpr char kFedAvgStrategy[] = "fedavg";
inline constexpr char kMedianStrategy[] = "median";
inline constexpr char kTrimmedMeanStrategy[] = "trimmed_mean";
inline constexpr char kKrumStrategy[] = "krum";
inline constexpr char kMultiKrumStrategy[] = "multikrum";
inline constexpr const char* kAggregationStrategies[] = {
    kFedAvgStrategy, kMedianStrategy, kTrimmedMeanStrategy, kKrumStrategy, kMultiKrumStrategy};

// Defaults the coordinator stores in a run's spec when its strategy reads
// the setting and the admin left it out.
inline constexpr double kDefaultTrimFraction = 0.2;
inline constexpr int kDefaultByzantineSites = 1;

// Every strategy but fedavg (also the empty name, which means fedavg) reads
// each site's own update, which secure aggregation hides from the
// coordinator: such runs cannot use it.
inline bool NeedsEachSiteUpdate(absl::string_view strategy) {
  return !strategy.empty() && strategy != kFedAvgStrategy;
}

inline bool ReadsTrimFraction(absl::string_view strategy) {
  return strategy == kTrimmedMeanStrategy;
}
inline bool ReadsByzantineSites(absl::string_view strategy) {
  return strategy == kKrumStrategy || strategy == kMultiKrumStrategy;
}
inline bool ReadsMultiKrumSelected(absl::string_view strategy) {
  return strategy == kMultiKrumStrategy;
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_STRATEGY_NAMES_H_
