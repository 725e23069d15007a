// A run's aggregation settings (RunSpec.strategy and RunSpec.robust): the
// defaults the coordinator stores in the spec, the checks at run start, and
// the AggregatorOptions every round builds its aggregator with.
//
// Pure functions of the spec; thread-safe.
#ifndef FEDMI_COORDINATOR_STRATEGY_SETTINGS_H_
#define FEDMI_COORDINATOR_STRATEGY_SETTINGS_H_

#include <string>

#include "absl/status/status.h"
#include "coordinator/aggregator.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Fills in the settings the spec's strategy reads and the admin left out
// (trim_fraction 0.2, byzantine_sites 1), so that the stored spec and the
// audit log say what ran. InvalidArgument, naming the setting, for a setting
// the strategy does not read ("byzantine_sites applies to krum and multikrum,
// not trimmed_mean"), a required one left out (norm_bounded's norm_bound), a
// value out of range, or min_sites below the fewest updates a round of the
// strategy can aggregate (Krum: 2f + 3).
absl::Status CompleteStrategySettings(v1::RunSpec* spec);

// The options of a spec that CompleteStrategySettings accepted, for a round
// whose sites train from the model at `global_model_path` (norm_bounded
// measures their changes against it; the others ignore it).
AggregatorOptions AggregatorOptionsOf(const v1::RunSpec& spec, std::string global_model_path = "");

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_STRATEGY_SETTINGS_H_
