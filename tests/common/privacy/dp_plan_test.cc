#include "common/privacy/dp_plan.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::privacy {
namespace {

using ::testing::HasSubstr;

v1::RunSpec SampleLevelSpec(double target_epsilon) {
  v1::RunSpec spec;
  spec.set_rounds(10);
  spec.set_local_epochs(2);
  spec.set_batch_size(64);
  v1::DpSettings& dp = *spec.mutable_dp();
  dp.set_level(v1::DP_LEVEL_SAMPLE);
  dp.set_target_epsilon(target_epsilon);
  dp.set_delta(1e-5);
  dp.set_clip_norm(1);
  return spec;
}

TEST(DpPlanTest, TheTypicalSiteSetsTheSampleRateAndTheNoiseMeetsTheTarget) {
  v1::RunSpec spec = SampleLevelSpec(3);
  ASSERT_TRUE(CompleteDpSettings(&spec, /*typical_site_examples=*/640).ok());
  const v1::DpSettings& dp = spec.dp();
  EXPECT_DOUBLE_EQ(dp.sample_rate(), 0.1);
  EXPECT_EQ(dp.steps_per_round(), 20) << "2 epochs of 1/q = 10 steps";
  ASSERT_GT(dp.noise_multiplier(), 0);
  // All planned rounds fit; the noise is no larger than it must be.
  const double planned = EpsilonAfterRounds(dp, 10)->epsilon;
  EXPECT_LE(planned, 3.0);
  EXPECT_GT(planned, 3.0 * (1 - 1e-4));
  auto rounds = RoundsWithinBudget(dp, 10);
  ASSERT_TRUE(rounds.ok());
  EXPECT_EQ(*rounds, 10);
}

TEST(DpPlanTest, AGivenNoiseIsKeptAndMayAffordFewerRounds) {
  v1::RunSpec spec = SampleLevelSpec(1);
  spec.mutable_dp()->set_noise_multiplier(0.8);
  spec.mutable_dp()->set_sample_rate(0.05);
  ASSERT_TRUE(CompleteDpSettings(&spec, 0).ok()) << "the sample rate is given";
  EXPECT_DOUBLE_EQ(spec.dp().noise_multiplier(), 0.8);
  EXPECT_EQ(spec.dp().steps_per_round(), 40);
  auto rounds = RoundsWithinBudget(spec.dp(), 10);
  ASSERT_TRUE(rounds.ok());
  EXPECT_LT(*rounds, 10);
  EXPECT_LE(EpsilonAfterRounds(spec.dp(), *rounds)->epsilon, 1.0);
  EXPECT_GT(EpsilonAfterRounds(spec.dp(), *rounds + 1)->epsilon, 1.0);
}

TEST(DpPlanTest, EpsilonGrowsWithRoundsFromZero) {
  v1::RunSpec spec = SampleLevelSpec(8);
  ASSERT_TRUE(CompleteDpSettings(&spec, 1000).ok());
  EXPECT_EQ(EpsilonAfterRounds(spec.dp(), 0)->epsilon, 0);
  double previous = 0;
  for (int rounds = 1; rounds <= 10; ++rounds) {
    const double epsilon = EpsilonAfterRounds(spec.dp(), rounds)->epsilon;
    EXPECT_GT(epsilon, previous) << rounds;
    previous = epsilon;
  }
}

TEST(DpPlanTest, SiteLevelAccountsOneFullStepPerRound) {
  v1::RunSpec spec = SampleLevelSpec(4);
  spec.mutable_dp()->set_level(v1::DP_LEVEL_SITE);
  ASSERT_TRUE(CompleteDpSettings(&spec, 0, /*round_sites=*/5).ok());
  EXPECT_EQ(spec.dp().sample_rate(), 1);
  auto mechanism = RoundMechanism(spec.dp());
  ASSERT_TRUE(mechanism.ok());
  EXPECT_EQ(mechanism->steps, 1);
  EXPECT_NEAR(EpsilonAfterRounds(spec.dp(), 10)->epsilon, 4.0, 4e-4);
}

TEST(DpPlanTest, RefusesWhatItCannotAccount) {
  v1::RunSpec spec = SampleLevelSpec(3);
  EXPECT_EQ(CompleteDpSettings(&spec, 0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(CompleteDpSettings(&spec, 0).message()), HasSubstr("--dp-sample-rate"));
  // A tiny budget is met with much noise, never by skipping the check.
  v1::RunSpec tiny = SampleLevelSpec(0.01);
  ASSERT_TRUE(CompleteDpSettings(&tiny, 640).ok());
  EXPECT_GT(tiny.dp().noise_multiplier(), 10);
  EXPECT_LE(EpsilonAfterRounds(tiny.dp(), 10)->epsilon, 0.01);
  v1::RunSpec incomplete = SampleLevelSpec(3);
  EXPECT_THAT(std::string(EpsilonAfterRounds(incomplete.dp(), 1).status().message()),
              HasSubstr("incomplete"));
  EXPECT_FALSE(RoundMechanism(v1::DpSettings()).ok()) << "no DP at all";
}

}  // namespace
}  // namespace fedmi::privacy

namespace fedmi::privacy {
namespace {

v1::RunSpec SiteLevelSpec(v1::DpNoisePlacement placement, bool secure) {
  v1::RunSpec spec;
  spec.set_rounds(10);
  spec.set_min_sites(3);
  spec.set_secure_aggregation(secure);
  v1::DpSettings& dp = *spec.mutable_dp();
  dp.set_level(v1::DP_LEVEL_SITE);
  dp.set_target_epsilon(8);
  dp.set_delta(1e-5);
  dp.set_clip_norm(0.5);
  dp.set_noise_placement(placement);
  return spec;
}

TEST(DpPlanTest, SiteLevelTakesTheConnectedSitesAndSizesTheSecAggClipForTheNoise) {
  v1::RunSpec spec = SiteLevelSpec(v1::DP_NOISE_DISTRIBUTED, /*secure=*/true);
  ASSERT_TRUE(CompleteDpSettings(&spec, 0, /*round_sites=*/20).ok());
  const v1::DpSettings& dp = spec.dp();
  EXPECT_EQ(dp.expected_sites(), 20);
  EXPECT_EQ(spec.max_sites(), 20) << "rounds take no more sites than the noise is shared among";
  EXPECT_NEAR(EpsilonAfterRounds(dp, 10)->epsilon, 8, 1e-3);
  const double share = dp.noise_multiplier() * 0.5 / std::sqrt(20.0);
  EXPECT_DOUBLE_EQ(SiteNoiseShareStddev(dp), share);
  EXPECT_DOUBLE_EQ(spec.secagg().clip(), 0.5 + 8.6 * share);
  // Central noise: no shares, no encoding to size.
  v1::RunSpec central = SiteLevelSpec(v1::DP_NOISE_CENTRAL, /*secure=*/true);
  ASSERT_TRUE(CompleteDpSettings(&central, 0, 20).ok());
  EXPECT_EQ(SiteNoiseShareStddev(central.dp()), 0);
  EXPECT_EQ(central.secagg().clip(), 0);
  // max_sites caps the expected sites; an explicit count is kept.
  v1::RunSpec capped = SiteLevelSpec(v1::DP_NOISE_CENTRAL, false);
  capped.set_max_sites(8);
  ASSERT_TRUE(CompleteDpSettings(&capped, 0, 20).ok());
  EXPECT_EQ(capped.dp().expected_sites(), 8);
  EXPECT_EQ(CompleteDpSettings(&capped, 0, 0).code(), absl::StatusCode::kOk);
  v1::RunSpec nobody = SiteLevelSpec(v1::DP_NOISE_CENTRAL, false);
  EXPECT_EQ(CompleteDpSettings(&nobody, 0, 0).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(DpPlanTest, SiteLevelRefusesASecAggClipThatWouldClampTheNoise) {
  v1::RunSpec spec = SiteLevelSpec(v1::DP_NOISE_DISTRIBUTED, /*secure=*/true);
  spec.mutable_secagg()->set_clip(0.6);
  const absl::Status status = CompleteDpSettings(&spec, 0, 20);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("clamp"));
}

// Sites that drop out take their noise shares with them: the round had less
// noise and costs more; with central noise nothing changes.
TEST(DpPlanTest, DroppedNoiseSharesCostMoreEpsilon) {
  v1::RunSpec spec = SiteLevelSpec(v1::DP_NOISE_DISTRIBUTED, /*secure=*/true);
  ASSERT_TRUE(CompleteDpSettings(&spec, 0, 20).ok());
  const v1::DpSettings& dp = spec.dp();
  EXPECT_DOUBLE_EQ(RoundNoiseMultiplier(dp, 20), dp.noise_multiplier());
  EXPECT_DOUBLE_EQ(RoundNoiseMultiplier(dp, 5), dp.noise_multiplier() / 2);
  EXPECT_DOUBLE_EQ(RoundNoiseMultiplier(dp, 25), dp.noise_multiplier())
      << "sites beyond the shares' count add no noise anyone counted on";
  const std::vector<int> full(10, 20);
  std::vector<int> dropped = full;
  dropped[3] = 15;
  const double planned = EpsilonOfRounds(dp, full)->epsilon;
  EXPECT_DOUBLE_EQ(planned, EpsilonAfterRounds(dp, 10)->epsilon);
  EXPECT_GT(EpsilonOfRounds(dp, dropped)->epsilon, planned);
  EXPECT_EQ(EpsilonOfRounds(dp, {0, 0})->epsilon, 0) << "a round nobody contributed to";
  v1::RunSpec central = SiteLevelSpec(v1::DP_NOISE_CENTRAL, false);
  ASSERT_TRUE(CompleteDpSettings(&central, 0, 20).ok());
  EXPECT_DOUBLE_EQ(EpsilonOfRounds(central.dp(), dropped)->epsilon,
                   EpsilonAfterRounds(central.dp(), 10)->epsilon);
}

// Andrew et al. 2021: the count's noise and the update's together cost what
// the round's sigma alone would: sigma_u^-2 + (2 sigma_b)^-2 = sigma^-2.
TEST(DpPlanTest, AdaptiveClippingSplitsTheRoundsNoiseBetweenCountAndUpdate) {
  v1::RunSpec spec = SiteLevelSpec(v1::DP_NOISE_CENTRAL, /*secure=*/false);
  spec.mutable_dp()->set_adaptive_clipping(true);
  ASSERT_TRUE(CompleteDpSettings(&spec, 0, /*round_sites=*/40).ok());
  const v1::DpSettings& dp = spec.dp();
  EXPECT_EQ(dp.target_quantile(), 0.5);
  EXPECT_EQ(dp.clip_learning_rate(), 0.2);
  EXPECT_DOUBLE_EQ(dp.clip_count_noise_multiplier(), std::max(2.0, dp.noise_multiplier()));
  const double sigma = dp.noise_multiplier(), update = UpdateNoiseMultiplier(dp);
  const double count = 2 * dp.clip_count_noise_multiplier();
  EXPECT_GT(update, sigma);
  EXPECT_NEAR(1 / (update * update) + 1 / (count * count), 1 / (sigma * sigma), 1e-12);
  // Fewer sites within the clip than the target quantile: the clip grows.
  EXPECT_DOUBLE_EQ(NextClipNorm(dp, 1.0, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(NextClipNorm(dp, 1.0, 0), std::exp(0.2 * 0.5));
  EXPECT_DOUBLE_EQ(NextClipNorm(dp, 2.0, 1), 2 * std::exp(-0.2 * 0.5));
  // The count is centred on half the contributors, so that adding or
  // removing a site moves it by 1/2 whichever side of the clip it is on.
  EXPECT_DOUBLE_EQ(NoisedWithinFraction(dp, 20, 40, 0), 0.5);
  EXPECT_DOUBLE_EQ(NoisedWithinFraction(dp, 0, 40, 0), 0);
  EXPECT_DOUBLE_EQ(NoisedWithinFraction(dp, 40, 40, 4), 1.1);
  EXPECT_DOUBLE_EQ(
      std::abs(NoisedWithinFraction(dp, 10, 30, 0) - NoisedWithinFraction(dp, 10, 31, 0)) * 40,
      0.5);
  EXPECT_DOUBLE_EQ(
      std::abs(NoisedWithinFraction(dp, 11, 31, 0) - NoisedWithinFraction(dp, 10, 30, 0)) * 40,
      0.5);
  v1::RunSpec fixed = SiteLevelSpec(v1::DP_NOISE_CENTRAL, false);
  ASSERT_TRUE(CompleteDpSettings(&fixed, 0, 40).ok());
  EXPECT_EQ(UpdateNoiseMultiplier(fixed.dp()), fixed.dp().noise_multiplier());
}

// One patient's images can move their site's clipped change anywhere in the
// S-ball: 2S, so per patient a site-level round costs sigma / 2.
TEST(DpPlanTest, APatientPaysTwiceTheSensitivityOfItsSiteAtSiteLevel) {
  v1::RunSpec spec = SiteLevelSpec(v1::DP_NOISE_CENTRAL, false);
  ASSERT_TRUE(CompleteDpSettings(&spec, 0, 10).ok());
  v1::DpSettings halved = spec.dp();
  halved.set_noise_multiplier(spec.dp().noise_multiplier() / 2);
  EXPECT_DOUBLE_EQ(PatientEpsilonAfterRounds(spec.dp(), 10)->epsilon,
                   EpsilonAfterRounds(halved, 10)->epsilon);
  EXPECT_GT(PatientEpsilonAfterRounds(spec.dp(), 10)->epsilon, 2 * 8.0);
  v1::RunSpec sample = SampleLevelSpec(8);
  ASSERT_TRUE(CompleteDpSettings(&sample, 640).ok());
  EXPECT_DOUBLE_EQ(PatientEpsilonAfterRounds(sample.dp(), 10)->epsilon,
                   EpsilonAfterRounds(sample.dp(), 10)->epsilon);
}

TEST(DpPlanTest, AdaptiveClippingRefusesACountThatWouldTakeTheWholeBudget) {
  v1::RunSpec spec = SiteLevelSpec(v1::DP_NOISE_CENTRAL, false);
  spec.mutable_dp()->set_adaptive_clipping(true);
  spec.mutable_dp()->set_noise_multiplier(2);
  spec.mutable_dp()->set_clip_count_noise_multiplier(1);  // 2 sigma_b = sigma
  const absl::Status status = CompleteDpSettings(&spec, 0, 10);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("more than half"));
}

}  // namespace
}  // namespace fedmi::privacy
