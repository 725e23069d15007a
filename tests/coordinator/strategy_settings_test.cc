#include "coordinator/strategy_settings.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::RunSpec SpecWith(const std::string& strategy, int32_t min_sites) {
  v1::RunSpec spec;
  spec.set_strategy(strategy);
  spec.set_min_sites(min_sites);
  return spec;
}

TEST(StrategySettingsTest, TheDefaultsTheStrategyReadsAreStoredInTheSpec) {
  v1::RunSpec trimmed = SpecWith("trimmed_mean", 5);
  ASSERT_THAT(CompleteStrategySettings(&trimmed), IsOk());
  EXPECT_DOUBLE_EQ(trimmed.robust().trim_fraction(), 0.2);
  EXPECT_FALSE(trimmed.robust().has_byzantine_sites());
  EXPECT_DOUBLE_EQ(AggregatorOptionsOf(trimmed).trim_fraction, 0.2);

  v1::RunSpec krum = SpecWith("krum", 5);
  ASSERT_THAT(CompleteStrategySettings(&krum), IsOk());
  EXPECT_EQ(krum.robust().byzantine_sites(), 1);
  EXPECT_FALSE(krum.robust().has_trim_fraction());

  v1::RunSpec fedavg = SpecWith("fedavg", 1);
  ASSERT_THAT(CompleteStrategySettings(&fedavg), IsOk());
  EXPECT_FALSE(fedavg.has_robust()) << "a fedavg spec stays as it was";
}

TEST(StrategySettingsTest, AnExplicitZeroIsKeptNotReplacedByTheDefault) {
  v1::RunSpec krum = SpecWith("krum", 3);
  krum.mutable_robust()->set_byzantine_sites(0);
  ASSERT_THAT(CompleteStrategySettings(&krum), IsOk());
  EXPECT_EQ(AggregatorOptionsOf(krum).byzantine_sites, 0);
  v1::RunSpec trimmed = SpecWith("trimmed_mean", 3);
  trimmed.mutable_robust()->set_trim_fraction(0);
  ASSERT_THAT(CompleteStrategySettings(&trimmed), IsOk());
  EXPECT_DOUBLE_EQ(AggregatorOptionsOf(trimmed).trim_fraction, 0);
}

TEST(StrategySettingsTest, SettingsTheStrategyDoesNotReadAreRefused) {
  v1::RunSpec fedavg = SpecWith("fedavg", 5);
  fedavg.mutable_robust()->set_byzantine_sites(2);
  EXPECT_THAT(CompleteStrategySettings(&fedavg).message(),
              HasSubstr("byzantine_sites applies to krum and multikrum, not to fedavg"));
  v1::RunSpec krum = SpecWith("krum", 5);
  krum.mutable_robust()->set_trim_fraction(0.1);
  EXPECT_THAT(CompleteStrategySettings(&krum).message(),
              HasSubstr("trim_fraction applies to trimmed_mean, not to krum"));
  v1::RunSpec plain_krum = SpecWith("krum", 5);
  plain_krum.mutable_robust()->set_multikrum_selected(2);
  EXPECT_THAT(CompleteStrategySettings(&plain_krum).message(),
              HasSubstr("multikrum_selected applies to multikrum, not to krum"));
}

TEST(StrategySettingsTest, KrumNeedsTwoFPlusThreeSitesInEveryRound) {
  v1::RunSpec krum = SpecWith("krum", 4);
  EXPECT_THAT(CompleteStrategySettings(&krum).message(),
              HasSubstr("krum with byzantine_sites 1 needs at least 5 updates per round; "
                        "min_sites is 4"));
  v1::RunSpec two_faulty = SpecWith("multikrum", 6);
  two_faulty.mutable_robust()->set_byzantine_sites(2);
  EXPECT_THAT(CompleteStrategySettings(&two_faulty).message(), HasSubstr("at least 7 updates"));
  v1::RunSpec selected = SpecWith("multikrum", 6);
  selected.mutable_robust()->set_multikrum_selected(6);  // m + f = 7
  EXPECT_THAT(CompleteStrategySettings(&selected).message(),
              HasSubstr("multikrum with byzantine_sites 1 and multikrum_selected 6 needs at "
                        "least 7 updates"));
}

TEST(StrategySettingsTest, ValuesOutOfRangeAreRefused) {
  v1::RunSpec trimmed = SpecWith("trimmed_mean", 5);
  trimmed.mutable_robust()->set_trim_fraction(0.5);
  EXPECT_THAT(CompleteStrategySettings(&trimmed).message(),
              HasSubstr("trim_fraction must be in [0, 0.5), got 0.5"));
  v1::RunSpec krum = SpecWith("krum", 9);
  krum.mutable_robust()->set_byzantine_sites(-1);
  EXPECT_THAT(CompleteStrategySettings(&krum), Not(IsOk()));
}

TEST(StrategySettingsTest, NormBoundedNeedsItsBoundAndNoOtherStrategyTakesOne) {
  v1::RunSpec bounded = SpecWith("norm_bounded", 1);
  EXPECT_THAT(CompleteStrategySettings(&bounded),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("norm_bounded needs norm_bound, the L2 norm each site's change")))
      << "no default bound";
  for (double bound : {0.0, -2.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    bounded.mutable_robust()->set_norm_bound(bound);
    EXPECT_THAT(CompleteStrategySettings(&bounded),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("norm_bound must be a finite number > 0")))
        << bound;
  }
  bounded.mutable_robust()->set_norm_bound(2.5);
  ASSERT_THAT(CompleteStrategySettings(&bounded), IsOk());
  EXPECT_DOUBLE_EQ(bounded.robust().norm_bound(), 2.5);
  EXPECT_FALSE(bounded.robust().has_trim_fraction());
  EXPECT_FALSE(bounded.robust().has_byzantine_sites());
  const AggregatorOptions options = AggregatorOptionsOf(bounded, "/store/abc");
  EXPECT_DOUBLE_EQ(options.norm_bound, 2.5);
  EXPECT_EQ(options.global_model_path, "/store/abc");

  for (const char* other : {"fedavg", "trimmed_mean", "krum"}) {
    v1::RunSpec spec = SpecWith(other, 5);
    spec.mutable_robust()->set_norm_bound(2.5);
    EXPECT_THAT(CompleteStrategySettings(&spec).message(),
                HasSubstr(std::string("norm_bound applies to norm_bounded, not to ") + other));
  }
  v1::RunSpec with_trim = SpecWith("norm_bounded", 1);
  with_trim.mutable_robust()->set_norm_bound(1);
  with_trim.mutable_robust()->set_trim_fraction(0.1);
  EXPECT_THAT(CompleteStrategySettings(&with_trim).message(),
              HasSubstr("trim_fraction applies to trimmed_mean, not to norm_bounded"));
}

}  // namespace
}  // namespace fedmi
