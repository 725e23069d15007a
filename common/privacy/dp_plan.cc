#include "common/privacy/dp_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/runspec/dp_spec.h"

namespace fedmi::privacy {
namespace {

// The largest draw NoiseSource::Normal can return: Box-Muller on 53-bit
// uniforms gives a radius of at most sqrt(-2 ln 2^-53) = 8.57.
constexpr double kLargestNoiseDraw = 8.6;
// Andrew et al. 2021's defaults: the median, and a geometric step of 0.2.
constexpr double kDefaultTargetQuantile = 0.5;
constexpr double kDefaultClipLearningRate = 0.2;

// Epsilon at `delta` after `rounds` repeats of one round's `mechanism`.
absl::StatusOr<PrivacySpent> EpsilonOfRepeats(SampledGaussian mechanism, int64_t rounds,
                                              double delta) {
  mechanism.steps *= rounds;
  RdpAccountant accountant;
  RETURN_IF_ERROR(accountant.Add(mechanism));
  return accountant.Spent(delta);
}

}  // namespace

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
  return EpsilonOfRepeats(mechanism, rounds, dp.delta());
}

absl::StatusOr<SampledGaussian> PatientRoundMechanism(const v1::DpSettings& dp) {
  ASSIGN_OR_RETURN(SampledGaussian mechanism, RoundMechanism(dp));
  if (dp.level() == v1::DP_LEVEL_SITE) mechanism.noise_multiplier /= 2;
  return mechanism;
}

absl::StatusOr<PrivacySpent> PatientEpsilonAfterRounds(const v1::DpSettings& dp, int64_t rounds) {
  ASSIGN_OR_RETURN(SampledGaussian mechanism, PatientRoundMechanism(dp));
  return EpsilonOfRepeats(mechanism, rounds, dp.delta());
}

double SiteNoiseShareStddev(const v1::DpSettings& dp) {
  const int shares = DistributedNoiseShares(dp);
  if (shares < 1) return 0;
  return dp.noise_multiplier() * dp.clip_norm() / std::sqrt(static_cast<double>(shares));
}

double RoundNoiseMultiplier(const v1::DpSettings& dp, int contributors) {
  const int shares = DistributedNoiseShares(dp);
  if (shares < 1) return dp.noise_multiplier();
  // More sites than the shares are sized for add no noise the sites
  // themselves would count on.
  const int added = std::min(contributors, shares);
  return dp.noise_multiplier() *
         std::sqrt(static_cast<double>(added) / static_cast<double>(shares));
}

absl::StatusOr<PrivacySpent> EpsilonOfRounds(const v1::DpSettings& dp,
                                             const std::vector<int>& contributors) {
  ASSIGN_OR_RETURN(SampledGaussian mechanism, RoundMechanism(dp));
  // Rounds with the same contributor count compose into one event.
  std::map<int, int64_t> rounds_by_count;
  for (int count : contributors) {
    if (count > 0) ++rounds_by_count[count];
  }
  RdpAccountant accountant;
  for (const auto& [count, rounds] : rounds_by_count) {
    SampledGaussian event = mechanism;
    event.noise_multiplier = RoundNoiseMultiplier(dp, count);
    event.steps *= rounds;
    RETURN_IF_ERROR(accountant.Add(event));
  }
  return accountant.Spent(dp.delta());
}

double UpdateNoiseMultiplier(const v1::DpSettings& dp) {
  const double sigma = dp.noise_multiplier();
  if (dp.level() != v1::DP_LEVEL_SITE || !dp.adaptive_clipping()) return sigma;
  const double count_share =
      1 / (4 * dp.clip_count_noise_multiplier() * dp.clip_count_noise_multiplier());
  const double left = 1 / (sigma * sigma) - count_share;
  return left > 0 ? 1 / std::sqrt(left) : std::numeric_limits<double>::infinity();
}

double NoisedWithinFraction(const v1::DpSettings& dp, int within, int contributors,
                            double count_noise) {
  const double centred = within - contributors / 2.0 + count_noise;
  return centred / std::max(1, dp.expected_sites()) + 0.5;
}

double NextClipNorm(const v1::DpSettings& dp, double clip, double fraction) {
  return clip * std::exp(-dp.clip_learning_rate() * (fraction - dp.target_quantile()));
}

double MinSecAggClipForSiteNoise(const v1::DpSettings& dp) {
  const double share = SiteNoiseShareStddev(dp);
  if (share == 0) return 0;
  return dp.clip_norm() + kLargestNoiseDraw * share;
}

absl::Status CompleteDpSettings(v1::RunSpec* spec, int64_t typical_site_examples, int round_sites) {
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
    if (dp.expected_sites() == 0) {
      int sites = round_sites;
      if (spec->max_sites() > 0) sites = std::min(sites, spec->max_sites());
      if (sites < 1) {
        return absl::FailedPreconditionError(
            "no site with training data is connected, so the sites each site-level DP round "
            "takes (the noise shares and DP-FedAvg's denominator) are unknown; connect the sites "
            "first or give --expected-sites");
      }
      dp.set_expected_sites(sites);
    }
    if (dp.expected_sites() < spec->min_sites()) {
      return absl::FailedPreconditionError(
          absl::StrCat("site-level DP would share its noise among ", dp.expected_sites(),
                       " sites, fewer than min_sites ", spec->min_sites(),
                       ": no round could open; connect more sites or lower --min-sites"));
    }
    if (spec->max_sites() == 0 || spec->max_sites() > dp.expected_sites()) {
      spec->set_max_sites(dp.expected_sites());
    }
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
  if (dp.level() == v1::DP_LEVEL_SITE && dp.adaptive_clipping()) {
    if (dp.target_quantile() == 0) dp.set_target_quantile(kDefaultTargetQuantile);
    if (dp.clip_learning_rate() == 0) dp.set_clip_learning_rate(kDefaultClipLearningRate);
    if (dp.clip_count_noise_multiplier() == 0) {
      dp.set_clip_count_noise_multiplier(
          std::max(dp.expected_sites() / 20.0, dp.noise_multiplier()));
    }
    if (!(2 * dp.clip_count_noise_multiplier() > dp.noise_multiplier())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adaptive clipping: the count's noise multiplier ", dp.clip_count_noise_multiplier(),
          " must be more than half the round's ", dp.noise_multiplier(),
          ", or the count would spend the whole budget and leave the update none"));
    }
  }
  const double min_clip = MinSecAggClipForSiteNoise(dp);
  if (spec->secure_aggregation() && min_clip > 0) {
    if (spec->secagg().clip() == 0) {
      spec->mutable_secagg()->set_clip(min_clip);
    } else if (spec->secagg().clip() < min_clip) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secagg clip ", spec->secagg().clip(), " would clamp the sites' noise shares (clip ",
          dp.clip_norm(), " plus up to 8.6 standard deviations of ", SiteNoiseShareStddev(dp),
          "), and clamped noise is not Gaussian: give at least ", min_clip, " or leave it unset"));
    }
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
