#include "cli/dp_flags.h"

#include "absl/strings/str_cat.h"
#include "cli/command_support.h"
#include "common/runspec/dp_spec.h"

namespace fedmi::cli {

void AddDpOptions(CLI::App* command, DpFlags* flags) {
  AddCheckedOption(command, "--dp", flags->level,
                   "differential privacy: sample (DP-SGD at each site: protects each patient), "
                   "site (DP-FedAvg: protects each site's whole data set) or none; see "
                   "docs/privacy.md",
                   CLI::IsMember({"none", "sample", "site"}));
  AddCheckedOption(command, "--target-epsilon", flags->target_epsilon,
                   "the run's privacy budget: no round starts that would take epsilon past it",
                   CLI::PositiveNumber);
  AddCheckedOption(command, "--delta", flags->delta,
                   "delta of the (epsilon, delta) guarantee (0: 1e-5; keep it below 1 / the "
                   "number of patients)",
                   CLI::Range(0.0, 1.0));
  AddCheckedOption(command, "--clip", flags->clip,
                   "L2 norm each example's gradient (--dp sample) or each site's update (--dp "
                   "site) is clipped to (0: 1.0)",
                   CLI::NonNegativeNumber);
  AddCheckedOption(command, "--noise-multiplier", flags->noise_multiplier,
                   "noise standard deviation over the clip (0: the smallest that keeps the "
                   "planned run within --target-epsilon)",
                   CLI::NonNegativeNumber);
  AddCheckedOption(command, "--dp-sample-rate", flags->sample_rate,
                   "probability that a DP-SGD step takes each example, at every site (0: batch "
                   "size / the connected sites' mean training set)",
                   CLI::Range(0.0, 1.0));
  AddCheckedOption(command, "--dp-noise", flags->noise,
                   "--dp site: who adds the noise: distributed (each site a share, under secure "
                   "aggregation: nobody sees the sum without it), central (the coordinator, "
                   "which sites must trust) or auto (distributed with --secure-aggregation "
                   "unless --adaptive-clip, else central)",
                   CLI::IsMember({"auto", "central", "distributed"}));
  AddCheckedOption(command, "--expected-sites", flags->expected_sites,
                   "--dp site: sites each round takes, among which the noise is shared and by "
                   "which the sum is divided (0: the sites connected at run start)",
                   CLI::NonNegativeNumber);
  command->add_flag("--adaptive-clip", flags->adaptive_clip,
                    "--dp site with central noise: move the clip each round towards the "
                    "--target-quantile of the sites' update norms (Andrew et al. 2021), from a "
                    "noised count; --clip is then the first round's");
  AddCheckedOption(command, "--target-quantile", flags->target_quantile,
                   "--adaptive-clip: share of sites whose update should fit the clip (0: 0.5)",
                   CLI::Range(0.0, 1.0));
  AddCheckedOption(command, "--clip-lr", flags->clip_lr,
                   "--adaptive-clip: geometric step of the clip per round (0: 0.2)",
                   CLI::NonNegativeNumber);
  AddCheckedOption(command, "--clip-count-noise", flags->clip_count_noise,
                   "--adaptive-clip: noise multiplier of the count of sites within the clip "
                   "(0: max(expected sites / 20, the round's noise multiplier))",
                   CLI::NonNegativeNumber);
}

absl::Status ApplyDpFlags(const DpFlags& flags, v1::RunSpec* spec) {
  spec->clear_dp();
  const std::optional<v1::DpLevel> level = ParseDpLevel(flags.level);
  if (!level) return absl::InvalidArgumentError(absl::StrCat("--dp: unknown '", flags.level, "'"));
  if (*level == v1::DP_LEVEL_NONE) {
    if (flags.target_epsilon != 0 || flags.delta != 0 || flags.clip != 0 ||
        flags.noise_multiplier != 0 || flags.sample_rate != 0 || flags.noise != "auto" ||
        flags.expected_sites != 0 || flags.adaptive_clip) {
      return absl::InvalidArgumentError(
          "--target-epsilon, --delta, --clip, --noise-multiplier, --dp-sample-rate, --dp-noise "
          "and --expected-sites need differential privacy: add --dp sample or --dp site");
    }
    return absl::OkStatus();
  }
  if (flags.target_epsilon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dp ", flags.level, " needs --target-epsilon: the budget the run may spend"));
  }
  v1::DpSettings& dp = *spec->mutable_dp();
  dp.set_level(*level);
  dp.set_target_epsilon(flags.target_epsilon);
  dp.set_delta(flags.delta);
  dp.set_clip_norm(flags.clip);
  dp.set_noise_multiplier(flags.noise_multiplier);
  dp.set_sample_rate(flags.sample_rate);
  const bool adaptive_options =
      flags.target_quantile != 0 || flags.clip_lr != 0 || flags.clip_count_noise != 0;
  if (*level != v1::DP_LEVEL_SITE) {
    if (flags.noise != "auto" || flags.expected_sites != 0 || flags.adaptive_clip ||
        adaptive_options) {
      return absl::InvalidArgumentError(
          "--dp-noise, --expected-sites and the adaptive clipping flags are for --dp site");
    }
    return absl::OkStatus();
  }
  if (adaptive_options && !flags.adaptive_clip) {
    return absl::InvalidArgumentError(
        "--target-quantile, --clip-lr and --clip-count-noise need --adaptive-clip");
  }
  dp.set_adaptive_clipping(flags.adaptive_clip);
  dp.set_target_quantile(flags.target_quantile);
  dp.set_clip_learning_rate(flags.clip_lr);
  dp.set_clip_count_noise_multiplier(flags.clip_count_noise);
  const std::optional<v1::DpNoisePlacement> placement =
      flags.noise == "auto"
          ? (spec->secure_aggregation() && !flags.adaptive_clip ? v1::DP_NOISE_DISTRIBUTED
                                                                : v1::DP_NOISE_CENTRAL)
          : ParseDpNoisePlacement(flags.noise);
  if (!placement) {
    return absl::InvalidArgumentError(absl::StrCat("--dp-noise: unknown '", flags.noise, "'"));
  }
  dp.set_noise_placement(*placement);
  dp.set_expected_sites(flags.expected_sites);
  return absl::OkStatus();
}

}  // namespace fedmi::cli
