// What a site's local training reports as it goes, without LibTorch: the
// worker turns ml::TrainOptions::progress into TrainingProgress values and
// hands them to a TrainingObserver; the progress bar, the per-epoch log
// line and the client's /metrics (client/client_metrics.h) all hear them.
//
// The text is drawn by pure functions of a TrainingProgress, so that it is
// tested without a terminal or a model:
//   round 2 epoch 1/2 [██████████░░░░░░░░░░]  640/1177 loss 0.3456 812 img/s ETA 3s
//   run 1 round 2: epoch 1/2: 1177 images in 1.4 s (840 img/s), loss 0.3456
#ifndef FEDMI_CLIENT_TRAINING_PROGRESS_H_
#define FEDMI_CLIENT_TRAINING_PROGRESS_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fedmi {

// Where one local training stands after a batch.
struct TrainingProgress {
  int64_t run_id = 0;
  int32_t round = 0;
  int epoch = 0;  // 0-based
  int epochs = 1;
  // Images done this epoch and per epoch. Under DP-SGD (`dp_steps`) the
  // batches are sampled, not a pass over the data: optimizer steps done and
  // in all, over the whole training, and epoch stays 0.
  int64_t done = 0;
  int64_t total = 0;
  double loss = 0;           // running mean loss of this epoch
  double epoch_seconds = 0;  // since this epoch (DP-SGD: the training) began
  bool dp_steps = false;

  bool EpochDone() const { return total > 0 && done >= total; }
};

// Where a completed train task's wall time went, in seconds. Secure
// aggregation's key exchange and masking are timed apart from the download
// and upload they surround.
struct RoundPhaseTimes {
  double secagg = 0;    // sharing keys, then masking the update (0 without)
  double download = 0;  // fetching the global model
  double training = 0;  // local training, with the update's own checks and DP
  double upload = 0;    // sending the (masked) update
};

// Hears a site's training tasks. Called on the daemon's task thread, one
// call at a time; an observer shared with other threads (/metrics) guards
// its own state.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  // After every batch of a local training.
  virtual void OnTrainingProgress(const TrainingProgress& progress) = 0;
  // A train task ended: OK when the site trained and sent its update, else
  // why not (its policy refused, it cannot run the spec, or it failed).
  virtual void OnRoundOutcome(int64_t run_id, int32_t round, const absl::Status& outcome) = 0;
  // A train task completed (before its OK outcome), with where its time
  // went. Most observers have no use for it.
  virtual void OnRoundPhases(int64_t /*run_id*/, int32_t /*round*/,
                             const RoundPhaseTimes& /*phases*/) {}
};

// Passes every call on to each of `observers` (not owned; nulls skipped).
class TrainingObservers final : public TrainingObserver {
 public:
  explicit TrainingObservers(std::vector<TrainingObserver*> observers)
      : observers_(std::move(observers)) {}
  void OnTrainingProgress(const TrainingProgress& progress) override;
  void OnRoundOutcome(int64_t run_id, int32_t round, const absl::Status& outcome) override;
  void OnRoundPhases(int64_t run_id, int32_t round, const RoundPhaseTimes& phases) override;

 private:
  std::vector<TrainingObserver*> observers_;
};

// "3s", "2:05", "1:02:05"; "?" for a negative or non-finite time.
std::string FormatEta(double seconds);

// The bar line for a terminal (no newline, no escape codes), `bar_cells`
// cells of the bar itself, e.g.
//   round 2 epoch 1/2 [██████████░░░░░░░░░░]  640/1177 loss 0.3456 812 img/s ETA 3s
// The ETA covers the epochs still to come at this epoch's rate; a finished
// epoch's line says how long it took instead ("in 1.9s"). Before anything
// is timed the rate and ETA read "-".
std::string ProgressBarLine(const TrainingProgress& progress, int bar_cells = 20);

// One line when an epoch (DP-SGD: the training) ends, for logs, e.g.
//   run 1 round 2: epoch 1/2: 1177 images in 1.4 s (840 img/s), loss 0.3456
std::string EpochLogLine(const TrainingProgress& progress);

// Shows training progress: on a terminal a bar redrawn in place (carriage
// return, erase to the end of the line) at most every `min_redraw_s` of
// training time and at each epoch's end, which keeps its bar on its own
// line; elsewhere one EpochLogLine per epoch through `log`.
class ProgressPrinter final : public TrainingObserver {
 public:
  using LogSink = std::function<void(absl::string_view line)>;
  // `out` (not owned) is the terminal; `log` receives the lines when
  // `terminal` is false (default: FEDMI_LOG(INFO)).
  // `columns` is the terminal's width, to which the bar is cut (0: no
  // limit): a line that wraps cannot be redrawn in place, the carriage
  // return going back only to the start of its last row.
  ProgressPrinter(std::ostream* out, bool terminal, LogSink log = nullptr,
                  double min_redraw_s = 0.1, int columns = 0);
  void OnTrainingProgress(const TrainingProgress& progress) override;
  // Ends a bar left mid-epoch by a training that stopped (failed, aborted),
  // so that what is written next does not land at the end of the bar.
  void OnRoundOutcome(int64_t run_id, int32_t round, const absl::Status& outcome) override;

 private:
  std::ostream* out_;
  bool terminal_;
  LogSink log_;
  double min_redraw_s_;
  int columns_;
  int last_epoch_ = -1;
  double last_drawn_s_ = -1;
  bool line_open_ = false;  // a bar is drawn and its line not ended
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_TRAINING_PROGRESS_H_
