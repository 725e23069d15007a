#include "cli/sim_label_flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(SimLabelFlagsTest, EverySiteGetsPseudoLabelsAndNamedSitesTheirSuspects) {
  SimLabelFlags flags;
  flags.semi_supervised = "pseudo-label";
  flags.noisy_labels = {"site-2:/x/suspects.csv"};
  flags.noisy_label_weight = 0.5;
  ASSERT_OK_AND_ASSIGN(auto of_site, SiteLabelFlags(flags, 3));
  EXPECT_THAT(of_site["site-1"], ElementsAre("--semi-supervised", "pseudo-label"));
  EXPECT_THAT(of_site["site-2"], ElementsAre("--semi-supervised", "pseudo-label", "--noisy-labels",
                                             "/x/suspects.csv", "--noisy-label-weight", "0.5"));
  flags = {};
  flags.noisy_labels = {"3:a.csv"};
  ASSERT_OK_AND_ASSIGN(of_site, SiteLabelFlags(flags, 3));
  EXPECT_THAT(of_site["site-1"], IsEmpty());
  EXPECT_THAT(of_site["site-3"], ElementsAre("--noisy-labels", "a.csv"));
}

TEST(SimLabelFlagsTest, MalformedOrRepeatedSitesAreRefused) {
  SimLabelFlags flags;
  for (const char* entry : {"site-4:a.csv", "site-1", "site-1:", "x:a.csv"}) {
    flags.noisy_labels = {entry};
    EXPECT_THAT(SiteLabelFlags(flags, 3),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SITE:FILE")))
        << entry;
  }
  flags.noisy_labels = {"site-1:a.csv", "1:b.csv"};
  EXPECT_THAT(SiteLabelFlags(flags, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
}

}  // namespace
}  // namespace fedmi::cli
