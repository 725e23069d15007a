// The vocabulary of a run's differential privacy (RunSpec.dp): the names
// flags, config files, JSON and reports use for its level and noise
// placement, and the arithmetic both the coordinator and every site derive
// from the spec alone (how many DP-SGD steps a round takes). Accounting
// itself (epsilon) lives in common/privacy.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_DP_SPEC_H_
#define FEDMI_COMMON_RUNSPEC_DP_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "fedmi/v1/federation.pb.h"
#include "nlohmann/json.hpp"

namespace fedmi {

// "none", "sample", "site".
const char* DpLevelName(v1::DpLevel level);
std::optional<v1::DpLevel> ParseDpLevel(absl::string_view name);
// "central", "distributed".
const char* DpNoisePlacementName(v1::DpNoisePlacement placement);
std::optional<v1::DpNoisePlacement> ParseDpNoisePlacement(absl::string_view name);

bool HasDifferentialPrivacy(const v1::RunSpec& spec);
// Site-level DP-FedAvg (--dp site).
bool IsSiteLevelDp(const v1::RunSpec& spec);
// Site level with the noise added in shares by the sites (--dp-noise
// distributed): the shares that make up the noise, expected_sites. 0 for
// any other run.
int DistributedNoiseShares(const v1::DpSettings& dp);

// Poisson-sampled DP-SGD steps a site takes in one round: ceil(1 / q) per
// local epoch, so that an epoch visits each example once in expectation.
// 0 for q outside (0, 1] or more than kMaxDpStepsPerRound steps.
inline constexpr int32_t kMaxDpStepsPerRound = 1000000;
int32_t DpStepsPerRound(int32_t local_epochs, double sample_rate);

// Epsilon for people: 4 significant digits, rounded up, so that a printed
// epsilon is never below the one accounted (8.00004 prints as 8.001).
std::string FormatEpsilon(double epsilon);

// Every field of spec.dp, with level and placement by name.
nlohmann::json DpSettingsToJson(const v1::DpSettings& dp);

// One line for people: "off", or e.g. "sample level (DP-SGD), target
// epsilon 8 at delta 1e-05, clip 1, noise multiplier 1.1, sample rate 0.068,
// 15 steps per round".
std::string DescribeDp(const v1::DpSettings& dp);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_DP_SPEC_H_
