// The overall progress `fedmi sim` and `fedmi bench` show, from hand-built
// statuses, and what the writer prints on and off a terminal.
#include "cli/run_progress.h"

#include <sstream>

#include "cli/watch_table.h"
#include "common/base/terminal_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::cli {
namespace {

// Round 3 of 10 with five sites: two trained, two training, one dropped.
v1::RunStatus Training() {
  v1::RunStatus run;
  run.set_state("running");
  run.set_phase("training");
  run.set_current_round(3);
  run.set_completed_rounds(2);
  run.mutable_spec()->set_rounds(10);
  v1::RoundStatus* round = run.add_rounds();
  round->set_round(3);
  round->set_state("training (secure aggregation: sharing secrets)");
  for (const char* state : {"uploaded", "uploaded", "training", "training", "dropped"}) {
    round->add_sites()->set_state(state);
  }
  return run;
}

TEST(RunProgressTest, CountsTrainedSitesOfTheCurrentRound) {
  const v1::RunStatus run = Training();
  EXPECT_EQ(RunProgressText(run),
            "round 3/10 training: 2/5 sites trained, 1 left (secure aggregation: sharing secrets)");
  // Two rounds, plus 2 trained of 5 sites at half weight: (2 + 0.2) / 10.
  EXPECT_DOUBLE_EQ(RunFraction(run), 0.22);
  // 2.2 of 10 cells: 2 full.
  EXPECT_EQ(RunProgressBar(run, 10).substr(0, 1 + 10 * 3 + 2),
            "[\u2588\u2588\u2591\u2591\u2591\u2591\u2591\u2591\u2591\u2591] ");
}

TEST(RunProgressTest, EvaluationCountsEvaluatedSites) {
  v1::RunStatus run = Training();
  run.set_phase("evaluating");
  v1::RoundStatus* round = run.mutable_rounds(0);
  round->set_state("evaluating");
  for (int i = 0; i < 4; ++i) round->mutable_sites(i)->set_state(i < 3 ? "evaluated" : "uploaded");
  EXPECT_EQ(RunProgressText(run), "round 3/10 evaluating: 3/5 sites evaluated, 1 left");
  // (2 + (4 trained + 3 evaluated) / 10) / 10
  EXPECT_DOUBLE_EQ(RunFraction(run), 0.27);
}

TEST(RunProgressTest, BeforeTheFirstRoundAndAtTheEnd) {
  v1::RunStatus run;
  run.set_state("pending");
  run.set_phase("waiting-for-sites");
  run.mutable_spec()->set_rounds(4);
  EXPECT_EQ(RunProgressText(run), "round 1/4 waiting-for-sites");
  EXPECT_EQ(RunFraction(run), 0);
  run.set_state("done");
  run.set_completed_rounds(4);
  EXPECT_EQ(RunProgressText(run), "run done after 4/4 rounds");
  EXPECT_EQ(RunProgressBar(run, 4), "[\u2588\u2588\u2588\u2588] run done after 4/4 rounds");
}

TEST(RunProgressWriterTest, OffATerminalOneLinePerChange) {
  std::ostringstream out;
  {
    RunProgressWriter writer(&out, /*terminal=*/false, "fedmi sim");
    v1::RunStatus run = Training();
    writer.Update(run);
    writer.Update(run);  // unchanged: nothing
    run.mutable_rounds(0)->mutable_sites(2)->set_state("uploaded");
    writer.Update(run);
  }
  EXPECT_EQ(out.str(),
            "fedmi sim: round 3/10 training: 2/5 sites trained, 1 left (secure aggregation: "
            "sharing secrets)\n"
            "fedmi sim: round 3/10 training: 3/5 sites trained, 1 left (secure aggregation: "
            "sharing secrets)\n");
}

TEST(RunProgressWriterTest, OnATerminalRedrawsInPlaceAndClears) {
  std::ostringstream out;
  const v1::RunStatus run = Training();
  {
    RunProgressWriter writer(&out, /*terminal=*/true, "fedmi sim");
    writer.Update(run);
    writer.Update(run);  // unchanged: not redrawn
    writer.Clear();
    writer.Update(run);  // cleared: drawn again
  }                      // and cleared on destruction
  const std::string bar = "\r" + RunProgressBar(run) + "\x1b[K";
  EXPECT_EQ(out.str(), bar + "\r\x1b[K" + bar + "\r\x1b[K");
}

TEST(RunProgressWriterTest, OnANarrowTerminalTheBarIsCutToItsWidth) {
  std::ostringstream out;
  const v1::RunStatus run = Training();
  ASSERT_GT(RunProgressBar(run).size(), 30u);
  {
    RunProgressWriter writer(&out, /*terminal=*/true, "fedmi sim", /*columns=*/30);
    writer.Update(run);
  }
  // 30 code points: "[", the 20 cells (3 bytes each), "] " and 7 letters.
  const std::string cut = FitToColumns(RunProgressBar(run), 30);
  EXPECT_EQ(cut, RunProgressBar(run).substr(0, 1 + 20 * 3 + 2 + 7));
  EXPECT_EQ(out.str(), "\r" + cut + "\x1b[K\r\x1b[K");
}

}  // namespace
}  // namespace fedmi::cli
