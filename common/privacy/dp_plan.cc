#include "common/privacy/dp_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/runspec/dp_spec.h"

namespace fedmi::privacy {

absl::StatusOr<SampledGaussian> RoundMechanism(const v1::DpSettings& dp) {
  SampledGaussian mechanism;
  mechanism.sample_rate = dp.sample_rate();
  mechanism.noise_multiplier = dp.noise_multiplier();
  switch (dp.level()) {
    case v1::DP_LEVEL_SAMPLE:
      mechanism.steps = dp.steps_per_round();
      break;
    case v1::DP_LEVEL_SITE:
      mechanism.steps = 1;
      break;
    default:
      return absl::InvalidArgumentError("the run has no differential privacy to account for");
  }
  if (!(mechanism.sample_rate > 0) || !(mechanism.noise_multiplier > 0) || mechanism.steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the run's DP settings are incomplete (sample rate ", mechanism.sample_rate,
                     ", noise multiplier ", mechanism.noise_multiplier, ", steps per round ",
                     mechanism.steps, "); the coordinator fills them in when the run starts"));
  }
  return mechanism;
}

absl::StatusOr<PrivacySpent> EpsilonAfterRounds(const v1::DpSettings& dp, int64_t rounds) {
  ASSIGN_OR_RETURN(SampledGaussian mechanism, RoundMechanism(dp));
  mechanism.steps *= rounds;
  RdpAccountant accountant;
  RETURN_IF_ERROR(accountant.Add(mechanism));
  return accountant.Spent(dp.delta());
}

absl::Status CompleteDpSettings(v1::RunSpec* spec, int64_t typical_site_examples) {
  v1::DpSettings& dp = *spec->mutable_dp();
  if (dp.level() == v1::DP_LEVEL_SAMPLE) {
    if (dp.sample_rate() == 0) {
      if (typical_site_examples <= 0) {
        return absl::FailedPreconditionError(
            "no site with training data is connected, so the DP-SGD sample rate cannot be "
            "derived from the sites' data; connect the sites first or give --dp-sample-rate");
      }
      dp.set_sample_rate(std::min(1.0, static_cast<double>(spec->batch_size()) /
                                           static_cast<double>(typical_site_examples)));
    }
    dp.set_steps_per_round(DpStepsPerRound(spec->local_epochs(), dp.sample_rate()));
  } else if (dp.level() == v1::DP_LEVEL_SITE) {
    if (dp.sample_rate() == 0) dp.set_sample_rate(1);
  }
  if (dp.noise_multiplier() == 0) {
    const int64_t steps = dp.level() == v1::DP_LEVEL_SAMPLE
                              ? int64_t{dp.steps_per_round()} * spec->rounds()
                              : spec->rounds();
    auto sigma = CalibrateNoiseMultiplier(dp.target_epsilon(), dp.delta(), dp.sample_rate(), steps);
    if (!sigma.ok()) {
      return absl::OutOfRangeError(absl::StrCat("cannot calibrate noise for target epsilon ",
                                                dp.target_epsilon(), " over ", spec->rounds(),
                                                " rounds: ", sigma.status().message()));
    }
    dp.set_noise_multiplier(*sigma);
  }
  return RoundMechanism(dp).status();
}

absl::StatusOr<int64_t> RoundsWithinBudget(const v1::DpSettings& dp, int64_t rounds) {
  // Epsilon grows with rounds: bisect on the count.
  int64_t low = 0, high = rounds;
  while (low < high) {
    const int64_t mid = low + (high - low + 1) / 2;
    ASSIGN_OR_RETURN(PrivacySpent spent, EpsilonAfterRounds(dp, mid));
    if (spent.epsilon <= dp.target_epsilon()) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

}  // namespace fedmi::privacy
