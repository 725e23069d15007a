#include "common/runspec/dp_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

TEST(DpSpecTest, LevelAndPlacementNamesRoundTrip) {
  for (v1::DpLevel level : {v1::DP_LEVEL_NONE, v1::DP_LEVEL_SAMPLE, v1::DP_LEVEL_SITE}) {
    EXPECT_EQ(ParseDpLevel(DpLevelName(level)), level);
  }
  EXPECT_STREQ(DpLevelName(v1::DP_LEVEL_SAMPLE), "sample");
  EXPECT_EQ(ParseDpLevel("patient"), std::nullopt);
  EXPECT_EQ(ParseDpNoisePlacement("distributed"), v1::DP_NOISE_DISTRIBUTED);
}

TEST(DpSpecTest, StepsPerRoundAreAnEpochOfOneOverQ) {
  EXPECT_EQ(DpStepsPerRound(1, 0.1), 10) << "1/0.1 is 10.000000000000002 in floating point";
  EXPECT_EQ(DpStepsPerRound(2, 0.068), 30);
  EXPECT_EQ(DpStepsPerRound(3, 1.0), 3);
  EXPECT_EQ(DpStepsPerRound(1, 0), 0);
  EXPECT_EQ(DpStepsPerRound(1, 1.5), 0);
  EXPECT_EQ(DpStepsPerRound(0, 0.1), 0);
  EXPECT_EQ(DpStepsPerRound(1000, 1e-7), 0) << "past kMaxDpStepsPerRound, not an overflow";
}

TEST(DpSpecTest, PrintedEpsilonIsNeverBelowTheAccountedOne) {
  EXPECT_EQ(FormatEpsilon(8.00004), "8.001");
  EXPECT_EQ(FormatEpsilon(7.99999), "8");
  EXPECT_EQ(FormatEpsilon(8), "8");
  EXPECT_EQ(FormatEpsilon(0.123412), "0.1235");
  EXPECT_EQ(FormatEpsilon(12345.1), "1.235e+04");
  EXPECT_EQ(FormatEpsilon(0), "0");
}

}  // namespace
}  // namespace fedmi
