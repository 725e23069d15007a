// fedmi's vocabulary: the states of runs, rounds, site participations and
// sites. Storage, the wire (admin.proto's `state` strings) and the CLI all
// spell them through these functions, and IsTerminal() is the one place
// that says when a run has finished.
#ifndef FEDMI_COMMON_BASE_NAMES_H_
#define FEDMI_COMMON_BASE_NAMES_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace fedmi {

enum class RunState { kPending, kRunning, kDone, kFailed, kAborted };

// A stored round: committed when its model is written, evaluated once the
// sites' reports are stored.
enum class RoundState { kCommitted, kEvaluated };

// One site in one round.
enum class ParticipationState {
  kTraining,    // task sent, no update yet
  kEvaluating,  // evaluation task sent, no report yet
  kUploaded,    // update aggregated
  kEvaluated,   // evaluation report stored
  kDropped,     // left the round (disconnect, deadline, refused update)
  kRefused,     // its policy refused the task
};

enum class SiteState { kActive, kRevoked };

// Done, failed or aborted: nothing more will happen to the run.
bool IsTerminal(RunState state);

// Lower-case names as stored and shown ("running", "evaluated", ...).
const char* StateName(RunState state);
const char* StateName(RoundState state);
const char* StateName(ParticipationState state);
const char* StateName(SiteState state);

std::optional<RunState> ParseRunState(absl::string_view name);
std::optional<RoundState> ParseRoundState(absl::string_view name);
std::optional<ParticipationState> ParseParticipationState(absl::string_view name);
std::optional<SiteState> ParseSiteState(absl::string_view name);

// For code that holds a state string from the wire: true for "done",
// "failed" and "aborted".
bool IsTerminalRunState(absl::string_view name);

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_NAMES_H_
