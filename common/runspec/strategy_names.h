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
inline constexpr char kNormBoundedStrategy[] = "norm_bounded";
inline constexpr const char* kAggregationStrategies[] = {
    kFedAvgStrategy, kMedianStrategy,    kTrimmedMeanStrategy,
    kKrumStrategy,   kMultiKrumStrategy, kNormBoundedStrategy};

// Defaults the coordinator stores in a run's spec when its strategy reads
// the setting and the admin left it out.
inline constexpr double kDefaultTrimFraction = 0.2;
inline constexpr int kDefaultByzantineSites = 1;

// Every strategy but fedavg (also the empty name, which means fedavg) and
// norm_bounded reads each site's own update, which secure aggregation hides
// from the coordinator: such runs cannot use it. norm_bounded can: under
// secure aggregation each site clips its own change before masking it and
// the coordinator takes the plain FedAvg mean of the clipped changes.
inline bool NeedsEachSiteUpdate(absl::string_view strategy) {
  return !strategy.empty() && strategy != kFedAvgStrategy && strategy != kNormBoundedStrategy;
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
// norm_bounded has no default bound: a bound is only as good as its fit to
// the model and the learning rate, which the admin must choose. The sites
// read it too (they clip their own change to it).
inline bool ReadsNormBound(absl::string_view strategy) { return strategy == kNormBoundedStrategy; }

// SCAFFOLD (RunSpec.scaffold): the global model bundle holds the server
// control variate of each trained tensor T as kScaffoldControlPrefix + T,
// and each site's update its own new control variate under the same name.
inline constexpr char kScaffoldControlPrefix[] = "scaffold.control/";
inline bool IsScaffoldControl(absl::string_view tensor) {
  return tensor.substr(0, sizeof(kScaffoldControlPrefix) - 1) == kScaffoldControlPrefix;
}

// BatchNorm's running statistics, buffers that training estimates rather
// than parameters it descends on (a model's "<layer>.running_mean" and
// "<layer>.running_var", as client/ml/script_builder.h and torch.nn name
// them). The server optimizers take them from the aggregate as they are:
// a momentum or adaptive step on a running variance can push it below zero,
// and the model to NaN.
inline bool IsRunningStatistic(absl::string_view tensor) {
  // The name's last dotted part (npos + 1 is 0: an undotted name is its own).
  const absl::string_view leaf = tensor.substr(tensor.rfind('.') + 1);
  return leaf == "running_mean" || leaf == "running_var";
}

// How the coordinator moves the global model by a round's aggregate
// (RunSpec.server_optimizer.kind; coordinator/server_optimizer.h).
inline constexpr char kFedAvgServerOptimizer[] = "fedavg";
inline constexpr char kFedAvgMServerOptimizer[] = "fedavgm";
inline constexpr char kFedAdamServerOptimizer[] = "fedadam";
inline constexpr char kFedYogiServerOptimizer[] = "fedyogi";
inline constexpr char kFedAdagradServerOptimizer[] = "fedadagrad";
inline constexpr const char* kServerOptimizers[] = {
    kFedAvgServerOptimizer, kFedAvgMServerOptimizer, kFedAdamServerOptimizer,
    kFedYogiServerOptimizer, kFedAdagradServerOptimizer};

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_STRATEGY_NAMES_H_
