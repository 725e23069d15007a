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

// The active-learning flags reach every site, checked once here rather
// than refused by each site at its start.
TEST(SimLabelFlagsTest, ActiveLearningFlagsReachEverySiteOnceChecked) {
  SimLabelFlags flags;
  flags.al_rounds = "2,4";
  flags.al_budget = "5%";
  flags.al_method = "coreset";
  ASSERT_OK_AND_ASSIGN(auto of_site, SiteLabelFlags(flags, 2));
  EXPECT_THAT(of_site["site-2"],
              ElementsAre("--al-rounds", "2,4", "--al-budget", "5%", "--al-method", "coreset"));
  flags.al_method = "entropi";
  EXPECT_THAT(SiteLabelFlags(flags, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--al-method")));
  flags.al_method = "";
  flags.al_budget = "5";
  ASSERT_OK_AND_ASSIGN(of_site, SiteLabelFlags(flags, 2));
  flags.al_budget = "150%";
  EXPECT_THAT(SiteLabelFlags(flags, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--al-budget '150%'")));
  flags.al_rounds = "";
  flags.al_budget = "5";
  EXPECT_THAT(SiteLabelFlags(flags, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go with --al-rounds")));
}

TEST(SimLabelFlagsTest, RoundsToExportAreRoundsOfTheRun) {
  SimLabelFlags flags;
  ASSERT_OK_AND_ASSIGN(std::vector<int> rounds, RoundsToExport(flags, 10));
  EXPECT_THAT(rounds, IsEmpty());
  flags.round_models = "5, 3,5";
  ASSERT_OK_AND_ASSIGN(rounds, RoundsToExport(flags, 10));
  EXPECT_THAT(rounds, ElementsAre(3, 5));
  for (const char* entry : {"0", "11", "x", "3;4", "-1"}) {
    flags.round_models = entry;
    EXPECT_THAT(RoundsToExport(flags, 10),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("from 1 to 10")))
        << entry;
  }
}

}  // namespace
}  // namespace fedmi::cli
