#include "cli/secagg_flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

TEST(SecAggFlagsTest, AutoIsOnFromFourSites) {
  SecAggFlags flags;
  v1::RunSpec spec;
  ASSERT_THAT(ApplySecAggFlags(flags, 3, &spec), IsOk());
  EXPECT_FALSE(spec.secure_aggregation()) << "sites' default policy wants 3 neighbours";
  EXPECT_EQ(DescribeSecAgg(spec), "off");
  ASSERT_THAT(ApplySecAggFlags(flags, 4, &spec), IsOk());
  EXPECT_TRUE(spec.secure_aggregation());
  EXPECT_EQ(DescribeSecAgg(spec), "on (threshold auto, complete graph, clip 1)");
}

TEST(SecAggFlagsTest, AutoStaysOffForStrategiesThatReadEachSitesUpdate) {
  SecAggFlags flags;
  v1::RunSpec spec;
  spec.set_strategy("krum");
  ASSERT_THAT(ApplySecAggFlags(flags, 5, &spec), IsOk());
  EXPECT_FALSE(spec.secure_aggregation()) << "the coordinator would refuse krum with it";
  spec.set_strategy("fedavg");
  ASSERT_THAT(ApplySecAggFlags(flags, 5, &spec), IsOk());
  EXPECT_TRUE(spec.secure_aggregation());
  spec.set_strategy("norm_bounded");
  ASSERT_THAT(ApplySecAggFlags(flags, 5, &spec), IsOk());
  EXPECT_TRUE(spec.secure_aggregation()) << "its sites clip their own change before masking";
}

TEST(SecAggFlagsTest, ExplicitSettingsReachTheSpec) {
  SecAggFlags flags;
  flags.mode = "on";
  flags.threshold = 3;
  flags.neighbours = 4;
  flags.clip = 0.25;
  flags.max_examples = 900;
  v1::RunSpec spec;
  ASSERT_THAT(ApplySecAggFlags(flags, 2, &spec), IsOk()) << "on is on, whatever the count";
  EXPECT_TRUE(spec.secure_aggregation());
  EXPECT_EQ(spec.secagg().threshold(), 3);
  EXPECT_EQ(spec.secagg().neighbours(), 4);
  EXPECT_DOUBLE_EQ(spec.secagg().clip(), 0.25);
  EXPECT_EQ(spec.secagg().max_examples(), 900);
  EXPECT_EQ(DescribeSecAgg(spec), "on (threshold 3, 4 neighbours, clip 0.25)");
}

TEST(SecAggFlagsTest, SettingsWithSecureAggregationOffAreAnError) {
  SecAggFlags flags;
  flags.mode = "off";
  flags.threshold = 3;
  v1::RunSpec spec;
  EXPECT_THAT(ApplySecAggFlags(flags, 5, &spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("which is off")));
  flags.mode = "auto";
  EXPECT_THAT(ApplySecAggFlags(flags, 2, &spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("this one has 2")));
  flags.threshold = 0;
  flags.mode = "off";
  ASSERT_THAT(ApplySecAggFlags(flags, 5, &spec), IsOk());
  EXPECT_FALSE(spec.secure_aggregation());
  EXPECT_FALSE(spec.has_secagg());
}

}  // namespace
}  // namespace fedmi::cli
