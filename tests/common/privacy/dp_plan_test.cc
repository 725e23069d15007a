#include "common/privacy/dp_plan.h"

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
  ASSERT_TRUE(CompleteDpSettings(&spec, 0).ok());
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
