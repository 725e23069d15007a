#include "client/training_progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/log.h"
#include "common/base/terminal_text.h"

namespace fedmi {
namespace {

// Units per second of the epoch so far; 0 before anything is timed.
double Rate(const TrainingProgress& p) {
  return p.epoch_seconds > 0 && p.done > 0 ? static_cast<double>(p.done) / p.epoch_seconds : 0;
}

// Seconds left: the rest of this epoch and every epoch after it.
double SecondsLeft(const TrainingProgress& p) {
  const double rate = Rate(p);
  if (rate <= 0) return -1;
  const int64_t later_epochs = p.dp_steps ? 0 : std::max(0, p.epochs - p.epoch - 1);
  const double units_left =
      static_cast<double>(std::max<int64_t>(0, p.total - p.done) + later_epochs * p.total);
  return units_left / rate;
}

std::string Stage(const TrainingProgress& p) {
  if (p.dp_steps) return absl::StrFormat("round %d DP-SGD", p.round);
  return absl::StrFormat("round %d epoch %d/%d", p.round, p.epoch + 1, p.epochs);
}

const char* UnitName(const TrainingProgress& p) { return p.dp_steps ? "steps" : "img"; }

}  // namespace

void TrainingObservers::OnTrainingProgress(const TrainingProgress& progress) {
  for (TrainingObserver* observer : observers_) {
    if (observer != nullptr) observer->OnTrainingProgress(progress);
  }
}

void TrainingObservers::OnRoundOutcome(int64_t run_id, int32_t round, const absl::Status& outcome) {
  for (TrainingObserver* observer : observers_) {
    if (observer != nullptr) observer->OnRoundOutcome(run_id, round, outcome);
  }
}

void TrainingObservers::OnRoundPhases(int64_t run_id, int32_t round,
                                      const RoundPhaseTimes& phases) {
  for (TrainingObserver* observer : observers_) {
    if (observer != nullptr) observer->OnRoundPhases(run_id, round, phases);
  }
}

std::string FormatEta(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(std::ceil(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%d:%02d", s / 60, s % 60);
  return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
}

std::string ProgressBarLine(const TrainingProgress& p, int bar_cells) {
  bar_cells = std::max(1, bar_cells);
  const double fraction =
      p.total > 0 ? std::clamp(static_cast<double>(p.done) / p.total, 0.0, 1.0) : 0.0;
  const int full = static_cast<int>(std::floor(fraction * bar_cells));
  std::string bar;
  for (int i = 0; i < bar_cells; ++i) bar += i < full ? "\u2588" : "\u2591";
  // Counts right-aligned to the total's width, so the line does not jitter.
  const int digits = static_cast<int>(absl::StrCat(p.total).size());
  const double rate = Rate(p);
  const double left = SecondsLeft(p);
  // A finished epoch's line stays on screen: it says how long it took.
  const std::string tail = p.EpochDone() ? absl::StrFormat("in %.1fs", p.epoch_seconds)
                                         : absl::StrCat("ETA ", left >= 0 ? FormatEta(left) : "-");
  return absl::StrFormat("%s [%s] %*d/%d loss %.4f %s %s/s %s", Stage(p), bar, digits, p.done,
                         p.total, p.loss, rate > 0 ? absl::StrFormat("%.0f", rate) : "-",
                         UnitName(p), tail);
}

std::string EpochLogLine(const TrainingProgress& p) {
  const double rate = Rate(p);
  const std::string rate_text =
      rate > 0 ? absl::StrFormat(" (%.0f %s/s)", rate, UnitName(p)) : std::string();
  if (p.dp_steps) {
    return absl::StrFormat("run %d round %d: DP-SGD: %d steps in %.1f s%s, loss %.4f", p.run_id,
                           p.round, p.done, p.epoch_seconds, rate_text, p.loss);
  }
  return absl::StrFormat("run %d round %d: epoch %d/%d: %d images in %.1f s%s, loss %.4f", p.run_id,
                         p.round, p.epoch + 1, p.epochs, p.done, p.epoch_seconds, rate_text,
                         p.loss);
}

ProgressPrinter::ProgressPrinter(std::ostream* out, bool terminal, LogSink log, double min_redraw_s,
                                 int columns)
    : out_(out),
      terminal_(terminal),
      log_(std::move(log)),
      min_redraw_s_(min_redraw_s),
      columns_(columns) {
  if (!log_) log_ = [](absl::string_view line) { FEDMI_LOG(INFO) << line; };
}

void ProgressPrinter::OnTrainingProgress(const TrainingProgress& progress) {
  const bool epoch_done = progress.EpochDone();
  if (!terminal_) {
    if (epoch_done) log_(EpochLogLine(progress));
    return;
  }
  // A new epoch, or a new training whose clock started again.
  if (progress.epoch != last_epoch_ || progress.epoch_seconds < last_drawn_s_) {
    last_epoch_ = progress.epoch;
    last_drawn_s_ = -1;
  }
  // Redraws are throttled by training time, not the wall clock, so that
  // what is drawn depends on the values alone.
  if (!epoch_done && last_drawn_s_ >= 0 && progress.epoch_seconds - last_drawn_s_ < min_redraw_s_) {
    return;
  }
  last_drawn_s_ = progress.epoch_seconds;
  *out_ << "\r" << FitToColumns(ProgressBarLine(progress), columns_) << "\x1b[K";
  line_open_ = true;
  if (epoch_done) {
    *out_ << "\n";
    last_epoch_ = -1;
    line_open_ = false;
  }
  out_->flush();
}

void ProgressPrinter::OnRoundOutcome(int64_t, int32_t, const absl::Status&) {
  if (!line_open_) return;
  *out_ << "\n" << std::flush;
  line_open_ = false;
  last_epoch_ = -1;
}

}  // namespace fedmi
