// `run status --watch` text from hand-built statuses: the compact table,
// the sparkline, which rounds print in line mode (a secure round's live
// state included), and the terminal helpers.
#include "cli/watch_table.h"

#include <cmath>

#include "common/base/terminal_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

void AddSite(v1::RoundStatus* round, const std::string& name, const std::string& state) {
  v1::SiteParticipation* site = round->add_sites();
  site->set_site(name);
  site->set_state(state);
}

v1::RoundStatus* AddRound(v1::RunStatus* run, int32_t number, const std::string& state,
                          double auc = NAN, double loss = NAN) {
  v1::RoundStatus* round = run->add_rounds();
  round->set_round(number);
  round->set_state(state);
  if (!std::isnan(auc)) {
    round->mutable_eval_metrics()->set_examples(300);
    round->mutable_eval_metrics()->set_auc(auc);
    round->mutable_eval_metrics()->set_loss(loss);
  }
  return round;
}

// Three rounds of a secure run: two evaluated (site-c dropped from round 2),
// the third live, mid secure aggregation.
v1::RunStatus SecureRun() {
  v1::RunStatus run;
  run.set_run_id(1);
  run.set_state("running");
  run.set_phase("training");
  run.set_current_round(3);
  run.mutable_spec()->set_model("cnn");
  run.mutable_spec()->set_rounds(3);
  v1::RoundStatus* r1 = AddRound(&run, 1, "evaluated", 0.9, 0.5);
  for (const char* site : {"site-a", "site-b", "site-c"}) AddSite(r1, site, "evaluated");
  v1::RoundStatus* r2 = AddRound(&run, 2, "evaluated", 0.95, 0.25);
  AddSite(r2, "site-a", "evaluated");
  AddSite(r2, "site-b", "evaluated");
  AddSite(r2, "site-c", "dropped");
  v1::RoundStatus* r3 = AddRound(&run, 3, "training (secure aggregation: sharing secrets)");
  AddSite(r3, "site-a", "uploaded");
  AddSite(r3, "site-b", "training");
  AddSite(r3, "site-d", "refused");
  return run;
}

TEST(SiteMarkTest, OneCharacterPerParticipationState) {
  EXPECT_EQ(SiteMark("training"), '.');
  EXPECT_EQ(SiteMark("evaluating"), 'e');
  EXPECT_EQ(SiteMark("uploaded"), '+');
  EXPECT_EQ(SiteMark("evaluated"), '#');
  EXPECT_EQ(SiteMark("dropped"), 'x');
  EXPECT_EQ(SiteMark("refused"), 'r');
  EXPECT_EQ(SiteMark("levitating"), '?');
}

TEST(SparklineTest, ScalesFromTheSmallestToTheLargestValue) {
  EXPECT_EQ(Sparkline({0.5, 0.75, 1.0}), "\u2581\u2585\u2588");  // 0, 3.5 -> 4, 7
  EXPECT_EQ(Sparkline({0.8, 0.8}), "\u2584\u2584");
  EXPECT_EQ(Sparkline({0.2, NAN, 0.9}), "\u2581 \u2588");
  EXPECT_EQ(Sparkline({}), "");
}

TEST(WatchTableLinesTest, ShowsEachSitesStatePerRoundAndTheAucSparkline) {
  EXPECT_THAT(
      WatchTableLines(SecureRun()),
      ElementsAre(
          "ROUND  STATE                                           SITES  AUC     LOSS",
          "    1  evaluated                                       ###-   0.9000  0.5000",
          "    2  evaluated                                       ##x-   0.9500  0.2500",
          "    3  training (secure aggregation: sharing secrets)  +.-r   -       -",
          "AUC \u2581\u2588 0.9000 .. 0.9500 over 2 rounds (sites' validation data, pooled)",
          "sites: site-a site-b site-c site-d",
          "# evaluated  + trained  . training  e evaluating  x dropped  r refused  - not in the "
          "round"));
}

TEST(WatchTableLinesTest, KeepsOnlyTheLatestRounds) {
  const std::vector<std::string> lines = WatchTableLines(SecureRun(), /*max_rounds=*/1);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[1], "  (2 earlier rounds not shown)");
  EXPECT_EQ(lines[2].substr(0, 16), "    3  training ");
}

std::vector<int32_t> Numbers(const std::vector<const v1::RoundStatus*>& rounds) {
  std::vector<int32_t> numbers;
  for (const v1::RoundStatus* round : rounds) numbers.push_back(round->round());
  return numbers;
}

TEST(SettledRoundsTest, ASecureRoundsLiveStateIsNeverSettled) {
  v1::RunStatus run = SecureRun();
  EXPECT_THAT(Numbers(SettledRounds(run, {})), ElementsAre(1, 2));
  EXPECT_THAT(Numbers(SettledRounds(run, {1})), ElementsAre(2));
  // Once its evaluation is in, the secure round settles with its metrics.
  run.mutable_rounds(2)->set_state("evaluated");
  run.mutable_rounds(2)->mutable_eval_metrics()->set_examples(300);
  EXPECT_THAT(Numbers(SettledRounds(run, {1, 2})), ElementsAre(3));
}

TEST(SettledRoundsTest, ACommittedRoundWaitsForItsEvaluationUnlessTheRunEnded) {
  v1::RunStatus run;
  run.set_state("running");
  AddRound(&run, 1, "committed");
  EXPECT_THAT(SettledRounds(run, {}), IsEmpty());
  run.set_state("failed");
  EXPECT_THAT(Numbers(SettledRounds(run, {})), ElementsAre(1));
}

TEST(MetricSparklineLineTest, EmptyUntilARoundIsEvaluated) {
  v1::RunStatus run;
  AddRound(&run, 1, "training");
  EXPECT_EQ(MetricSparklineLine(run), "");
  AddRound(&run, 2, "evaluated", 0.75, 0.5);
  EXPECT_EQ(MetricSparklineLine(run),
            "AUC \u2584 0.7500 .. 0.7500 over 1 round (sites' validation data, pooled)");
}

TEST(FitToWidthTest, CountsCodePointsNotBytes) {
  EXPECT_EQ(FitToColumns("abcdef", 4), "abcd");
  EXPECT_EQ(FitToColumns("a\u2581\u2588bc", 3), "a\u2581\u2588");
  EXPECT_EQ(FitToColumns("abc", 0), "abc");
  EXPECT_EQ(FitToColumns("abc", 3), "abc");
}

TEST(RedrawPrefixTest, MovesUpAndErases) {
  EXPECT_EQ(RedrawPrefix(0), "");
  EXPECT_EQ(RedrawPrefix(7), "\x1b[7A\r\x1b[J");
}

}  // namespace
}  // namespace fedmi::cli
