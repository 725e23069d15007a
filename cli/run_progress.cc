#include "cli/run_progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "cli/run_status_text.h"
#include "cli/watch_table.h"
#include "common/base/names.h"
#include "common/base/terminal_text.h"

namespace fedmi::cli {
namespace {

struct RoundCounts {
  int sites = 0;
  int trained = 0;  // uploaded, evaluating or evaluated
  int evaluated = 0;
  int left = 0;  // dropped or refused
  const v1::RoundStatus* round = nullptr;
};

// The current round's sites, when it is live.
std::optional<RoundCounts> CurrentRound(const v1::RunStatus& run) {
  for (const auto& round : run.rounds()) {
    if (round.round() != run.current_round() || !IsRoundLive(round.state())) continue;
    RoundCounts counts;
    counts.round = &round;
    counts.sites = round.sites_size();
    for (const auto& site : round.sites()) {
      const std::optional<ParticipationState> state = ParseParticipationState(site.state());
      if (!state) continue;
      if (HasLeftRound(*state)) {
        ++counts.left;
        continue;
      }
      counts.trained += *state != ParticipationState::kTraining ? 1 : 0;
      counts.evaluated += *state == ParticipationState::kEvaluated ? 1 : 0;
    }
    return counts;
  }
  return std::nullopt;
}

}  // namespace

bool StderrBarFits() { return isatty(STDERR_FILENO) == 1 && isatty(STDOUT_FILENO) == 1; }

int StderrColumns() {
  struct winsize size {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

double RunFraction(const v1::RunStatus& run) {
  const int rounds = std::max(1, run.spec().rounds());
  if (IsTerminalRunState(run.state())) return std::min(1.0, 1.0 * run.completed_rounds() / rounds);
  double done = run.completed_rounds();
  if (std::optional<RoundCounts> current = CurrentRound(run); current && current->sites > 0) {
    done += (current->trained + current->evaluated) / (2.0 * current->sites);
  }
  return std::clamp(done / rounds, 0.0, 1.0);
}

std::string RunProgressText(const v1::RunStatus& run) {
  const int rounds = run.spec().rounds();
  if (IsTerminalRunState(run.state())) {
    return absl::StrFormat("run %s after %d/%d rounds", run.state(), run.completed_rounds(),
                           rounds);
  }
  std::optional<RoundCounts> current = CurrentRound(run);
  if (!current) {
    return absl::StrFormat("round %d/%d %s", std::max(1, run.current_round()), rounds, run.phase());
  }
  const bool evaluating = absl::StartsWith(current->round->state(), "evaluating");
  std::string text =
      absl::StrFormat("round %d/%d %s: %d/%d sites %s", run.current_round(), rounds, run.phase(),
                      evaluating ? current->evaluated : current->trained, current->sites,
                      evaluating ? "evaluated" : "trained");
  if (current->left > 0) absl::StrAppend(&text, ", ", current->left, " left");
  // "training (secure aggregation: sharing secrets)": the step, in brackets.
  const std::string& state = current->round->state();
  if (const size_t open = state.find(" ("); open != std::string::npos) {
    absl::StrAppend(&text, " ", state.substr(open + 1));
  }
  return text;
}

std::string RunProgressBar(const v1::RunStatus& run, int cells) {
  cells = std::max(1, cells);
  const int full = static_cast<int>(RunFraction(run) * cells);
  std::string bar = "[";
  for (int i = 0; i < cells; ++i) bar += i < full ? "\u2588" : "\u2591";
  return absl::StrCat(bar, "] ", RunProgressText(run));
}

void RunProgressWriter::Update(const v1::RunStatus& run) {
  if (terminal_) {
    const std::string bar = FitToColumns(RunProgressBar(run), columns_);
    if (bar == last_ && drawn_) return;
    last_ = bar;
    *out_ << "\r" << bar << "\x1b[K" << std::flush;
    drawn_ = true;
    return;
  }
  std::string text = RunProgressText(run);
  if (text == last_) return;
  last_ = std::move(text);
  *out_ << prefix_ << ": " << last_ << std::endl;
}

void RunProgressWriter::Clear() {
  if (!terminal_ || !drawn_) return;
  *out_ << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

}  // namespace fedmi::cli
