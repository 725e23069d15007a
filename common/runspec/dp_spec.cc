#include "common/runspec/dp_spec.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/enum_names.h"

namespace fedmi {
namespace {

constexpr EnumName<v1::DpLevel> kDpLevels[] = {
    {v1::DP_LEVEL_NONE, "none"},
    {v1::DP_LEVEL_SAMPLE, "sample"},
    {v1::DP_LEVEL_SITE, "site"},
};

constexpr EnumName<v1::DpNoisePlacement> kDpNoisePlacements[] = {
    {v1::DP_NOISE_CENTRAL, "central"},
    {v1::DP_NOISE_DISTRIBUTED, "distributed"},
};

nlohmann::json Number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

const char* DpLevelName(v1::DpLevel level) { return NameOf(kDpLevels, level); }

std::optional<v1::DpLevel> ParseDpLevel(absl::string_view name) {
  return ParseName(kDpLevels, name);
}

const char* DpNoisePlacementName(v1::DpNoisePlacement placement) {
  return NameOf(kDpNoisePlacements, placement);
}

std::optional<v1::DpNoisePlacement> ParseDpNoisePlacement(absl::string_view name) {
  return ParseName(kDpNoisePlacements, name);
}

bool HasDifferentialPrivacy(const v1::RunSpec& spec) {
  return spec.dp().level() != v1::DP_LEVEL_NONE;
}

bool IsSiteLevelDp(const v1::RunSpec& spec) { return spec.dp().level() == v1::DP_LEVEL_SITE; }

int DistributedNoiseShares(const v1::DpSettings& dp) {
  if (dp.level() != v1::DP_LEVEL_SITE || dp.noise_placement() != v1::DP_NOISE_DISTRIBUTED) {
    return 0;
  }
  return std::max(0, dp.expected_sites());
}

int32_t DpStepsPerRound(int32_t local_epochs, double sample_rate) {
  if (!(sample_rate > 0) || sample_rate > 1 || local_epochs < 1) return 0;
  // The epsilon keeps 1/q from landing just above an integer through rounding
  // (q = 0.1 is 10.000000000000002 steps, not 11).
  const double steps = std::ceil(1.0 / sample_rate - 1e-9) * local_epochs;
  return steps > kMaxDpStepsPerRound ? 0 : static_cast<int32_t>(steps);
}

std::string FormatEpsilon(double epsilon) {
  if (!std::isfinite(epsilon) || !(epsilon > 0)) return absl::StrFormat("%g", epsilon);
  const double scale = std::pow(10.0, 3 - std::floor(std::log10(epsilon)));
  return absl::StrFormat("%.4g", std::ceil(epsilon * scale) / scale);
}

nlohmann::json DpSettingsToJson(const v1::DpSettings& dp) {
  return {{"level", DpLevelName(dp.level())},
          {"target_epsilon", Number(dp.target_epsilon())},
          {"delta", Number(dp.delta())},
          {"clip_norm", Number(dp.clip_norm())},
          {"noise_multiplier", Number(dp.noise_multiplier())},
          {"sample_rate", Number(dp.sample_rate())},
          {"steps_per_round", dp.steps_per_round()},
          {"noise_placement", DpNoisePlacementName(dp.noise_placement())},
          {"expected_sites", dp.expected_sites()},
          {"adaptive_clipping", dp.adaptive_clipping()},
          {"target_quantile", Number(dp.target_quantile())},
          {"clip_learning_rate", Number(dp.clip_learning_rate())},
          {"clip_count_noise_multiplier", Number(dp.clip_count_noise_multiplier())}};
}

std::string DescribeDp(const v1::DpSettings& dp) {
  switch (dp.level()) {
    case v1::DP_LEVEL_SAMPLE:
      return absl::StrFormat(
          "sample level (DP-SGD at each site), target epsilon %g at delta %g, clip %g per "
          "example, noise multiplier %.6g, sample rate %.6g, %d steps per round",
          dp.target_epsilon(), dp.delta(), dp.clip_norm(), dp.noise_multiplier(), dp.sample_rate(),
          dp.steps_per_round());
    case v1::DP_LEVEL_SITE:
      return absl::StrFormat(
          "site level (DP-FedAvg), target epsilon %g at delta %g, clip %g per site update%s, "
          "noise multiplier %g added %s",
          dp.target_epsilon(), dp.delta(), dp.clip_norm(),
          dp.adaptive_clipping() ? absl::StrFormat(" (adaptive, quantile %g)", dp.target_quantile())
                                 : "",
          dp.noise_multiplier(),
          dp.noise_placement() == v1::DP_NOISE_DISTRIBUTED
              ? absl::StrCat("in shares by ", dp.expected_sites(), " sites")
              : std::string("by the coordinator"));
    default:
      return "off";
  }
}

}  // namespace fedmi
