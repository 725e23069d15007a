// The progress bar and the per-epoch line as pure functions of a
// TrainingProgress, and what ProgressPrinter writes for a sequence of them.
#include "client/training_progress.h"

#include <sstream>
#include <string>
#include <vector>

#include "common/base/terminal_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;

TrainingProgress At(int epoch, int64_t done, double seconds, double loss = 0.5) {
  TrainingProgress p;
  p.run_id = 3;
  p.round = 2;
  p.epoch = epoch;
  p.epochs = 2;
  p.done = done;
  p.total = 1000;
  p.loss = loss;
  p.epoch_seconds = seconds;
  return p;
}

TEST(FormatEtaTest, SecondsMinutesHours) {
  EXPECT_EQ(FormatEta(0), "0s");
  EXPECT_EQ(FormatEta(2.1), "3s");  // rounded up: never promise too early
  EXPECT_EQ(FormatEta(125), "2:05");
  EXPECT_EQ(FormatEta(3725), "1:02:05");
  EXPECT_EQ(FormatEta(-1), "?");
}

TEST(ProgressBarLineTest, FillsTheBarAndCountsTheEpochsStillToCome) {
  // 250 of 1000 images in 0.5 s: 500 img/s; left: 750 of this epoch and the
  // 1000 of epoch 2, 3.5 s.
  EXPECT_EQ(ProgressBarLine(At(0, 250, 0.5, 0.34567), 8),
            "round 2 epoch 1/2 [\u2588\u2588\u2591\u2591\u2591\u2591\u2591\u2591]  250/1000 "
            "loss 0.3457 500 img/s ETA 4s");
  // An epoch's end: a full bar and the time it took.
  EXPECT_EQ(ProgressBarLine(At(0, 1000, 2.0), 4),
            "round 2 epoch 1/2 [\u2588\u2588\u2588\u2588] 1000/1000 loss 0.5000 500 img/s in 2.0s");
}

TEST(ProgressBarLineTest, UntimedProgressHasNoRateOrEta) {
  EXPECT_EQ(ProgressBarLine(At(0, 0, 0), 2),
            "round 2 epoch 1/2 [\u2591\u2591]    0/1000 loss 0.5000 - img/s ETA -");
}

TEST(ProgressBarLineTest, DpSgdCountsStepsOverTheWholeTraining) {
  TrainingProgress p = At(0, 10, 5.0);
  p.dp_steps = true;
  p.total = 40;
  // 2 steps/s, 30 steps left: 15 s; epochs play no part.
  EXPECT_EQ(ProgressBarLine(p, 4),
            "round 2 DP-SGD [\u2588\u2591\u2591\u2591] 10/40 loss 0.5000 2 steps/s ETA 15s");
}

TEST(EpochLogLineTest, NamesRunRoundEpochImagesTimeRateAndLoss) {
  EXPECT_EQ(EpochLogLine(At(0, 1000, 1.6, 0.25)),
            "run 3 round 2: epoch 1/2: 1000 images in 1.6 s (625 img/s), loss 0.2500");
  TrainingProgress dp = At(0, 40, 8.0);
  dp.dp_steps = true;
  dp.total = 40;
  EXPECT_EQ(EpochLogLine(dp), "run 3 round 2: DP-SGD: 40 steps in 8.0 s (5 steps/s), loss 0.5000");
}

TEST(ProgressPrinterTest, WithoutATerminalLogsOneLinePerEpoch) {
  std::ostringstream terminal;
  std::vector<std::string> lines;
  ProgressPrinter printer(&terminal, /*terminal=*/false,
                          [&](absl::string_view line) { lines.emplace_back(line); });
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (int64_t done : {300, 600, 900, 1000})
      printer.OnTrainingProgress(At(epoch, done, done / 500.0));
  }
  EXPECT_THAT(
      lines,
      ElementsAre("run 3 round 2: epoch 1/2: 1000 images in 2.0 s (500 img/s), loss 0.5000",
                  "run 3 round 2: epoch 2/2: 1000 images in 2.0 s (500 img/s), loss 0.5000"));
  EXPECT_EQ(terminal.str(), "");
}

TEST(ProgressPrinterTest, OnATerminalRedrawsInPlaceThrottledAndEndsEachEpochsLine) {
  std::ostringstream terminal;
  ProgressPrinter printer(&terminal, /*terminal=*/true, nullptr, /*min_redraw_s=*/1.0);
  // Drawn: the first batch, the first one 1 s or more after it, the epoch's
  // end; 0.6 s and 1.1 s are skipped as too soon.
  for (auto [done, seconds] : std::vector<std::pair<int64_t, double>>{
           {100, 0.2}, {300, 0.6}, {600, 1.1}, {700, 1.5}, {1000, 2.0}}) {
    printer.OnTrainingProgress(At(1, done, seconds));
  }
  const std::string out = terminal.str();
  auto drawn = [&](int64_t done, double seconds) {
    return "\r" + ProgressBarLine(At(1, done, seconds)) + "\x1b[K";
  };
  EXPECT_EQ(out, drawn(100, 0.2) + drawn(700, 1.5) + drawn(1000, 2.0) + "\n");
  // The next training starts its clock again and is drawn at once.
  terminal.str("");
  printer.OnTrainingProgress(At(1, 100, 0.1));
  EXPECT_EQ(terminal.str(), drawn(100, 0.1));
}

TEST(ProgressPrinterTest, ATrainingThatStopsMidEpochEndsItsBarsLine) {
  std::ostringstream terminal;
  ProgressPrinter printer(&terminal, /*terminal=*/true, nullptr, /*min_redraw_s=*/0);
  printer.OnTrainingProgress(At(0, 400, 0.8));
  // The daemon logs the failure to the same stderr right after the outcome.
  printer.OnRoundOutcome(3, 2, absl::CancelledError("run aborted"));
  const std::string bar = "\r" + ProgressBarLine(At(0, 400, 0.8)) + "\x1b[K";
  EXPECT_EQ(terminal.str(), bar + "\n");
  // An outcome after a finished epoch's line adds nothing.
  terminal.str("");
  printer.OnTrainingProgress(At(1, 1000, 2.0));
  printer.OnRoundOutcome(3, 2, absl::OkStatus());
  EXPECT_EQ(terminal.str(), "\r" + ProgressBarLine(At(1, 1000, 2.0)) + "\x1b[K\n");
}

TEST(ProgressPrinterTest, OnANarrowTerminalTheBarIsCutToItsWidth) {
  std::ostringstream terminal;
  ProgressPrinter printer(&terminal, /*terminal=*/true, nullptr, /*min_redraw_s=*/0,
                          /*columns=*/40);
  printer.OnTrainingProgress(At(0, 400, 0.8));
  // "round 2 epoch 1/2 [" is 19 code points; then 20 cells of 3 bytes, and
  // the 40th code point is the bar's "]".
  const std::string line = ProgressBarLine(At(0, 400, 0.8));
  ASSERT_GT(line.size(), 19u + 20 * 3 + 1);
  EXPECT_EQ(terminal.str(), "\r" + line.substr(0, 19 + 20 * 3 + 1) + "\x1b[K");
  EXPECT_EQ(FitToColumns("ab\u2588c", 3), "ab\u2588");
  EXPECT_EQ(FitToColumns("abc", 0), "abc");
  EXPECT_EQ(FitToColumns("abc", 5), "abc");
}

TEST(TrainingObserversTest, PassesEveryCallToEachObserver) {
  struct Recorder : TrainingObserver {
    std::vector<std::string> calls;
    void OnTrainingProgress(const TrainingProgress& p) override {
      calls.push_back("progress " + std::to_string(p.done));
    }
    void OnRoundOutcome(int64_t run, int32_t round, const absl::Status& outcome) override {
      calls.push_back("outcome " + std::to_string(run) + "/" + std::to_string(round) + " " +
                      std::string(absl::StatusCodeToString(outcome.code())));
    }
  } a, b;
  TrainingObservers both({&a, nullptr, &b});
  both.OnTrainingProgress(At(0, 7, 1));
  both.OnRoundOutcome(3, 2, absl::PermissionDeniedError("no"));
  EXPECT_THAT(a.calls, ElementsAre("progress 7", "outcome 3/2 PERMISSION_DENIED"));
  EXPECT_EQ(a.calls, b.calls);
}

}  // namespace
}  // namespace fedmi
