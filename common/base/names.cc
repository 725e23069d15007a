#include "common/base/names.h"

namespace fedmi {
namespace {

template <typename State, size_t N>
std::optional<State> ParseState(const State (&all)[N], absl::string_view name) {
  for (State state : all) {
    if (name == StateName(state)) return state;
  }
  return std::nullopt;
}

constexpr RunState kRunStates[] = {RunState::kPending, RunState::kRunning, RunState::kDone,
                                   RunState::kFailed, RunState::kAborted};
constexpr RoundState kRoundStates[] = {RoundState::kCommitted, RoundState::kEvaluated};
constexpr ParticipationState kParticipationStates[] = {
    ParticipationState::kTraining,  ParticipationState::kEvaluating, ParticipationState::kUploaded,
    ParticipationState::kEvaluated, ParticipationState::kDropped,    ParticipationState::kRefused};
constexpr SiteState kSiteStates[] = {SiteState::kActive, SiteState::kRevoked};

}  // namespace

bool IsTerminal(RunState state) {
  return state == RunState::kDone || state == RunState::kFailed || state == RunState::kAborted;
}

const char* StateName(RunState state) {
  switch (state) {
    case RunState::kPending:
      return "pending";
    case RunState::kRunning:
      return "running";
    case RunState::kDone:
      return "done";
    case RunState::kFailed:
      return "failed";
    case RunState::kAborted:
      return "aborted";
  }
  return "unknown";
}

const char* StateName(RoundState state) {
  switch (state) {
    case RoundState::kCommitted:
      return "committed";
    case RoundState::kEvaluated:
      return "evaluated";
  }
  return "unknown";
}

const char* StateName(ParticipationState state) {
  switch (state) {
    case ParticipationState::kTraining:
      return "training";
    case ParticipationState::kEvaluating:
      return "evaluating";
    case ParticipationState::kUploaded:
      return "uploaded";
    case ParticipationState::kEvaluated:
      return "evaluated";
    case ParticipationState::kDropped:
      return "dropped";
    case ParticipationState::kRefused:
      return "refused";
  }
  return "unknown";
}

const char* StateName(SiteState state) {
  switch (state) {
    case SiteState::kActive:
      return "active";
    case SiteState::kRevoked:
      return "revoked";
  }
  return "unknown";
}

std::optional<RunState> ParseRunState(absl::string_view name) {
  return ParseState(kRunStates, name);
}
std::optional<RoundState> ParseRoundState(absl::string_view name) {
  return ParseState(kRoundStates, name);
}
std::optional<ParticipationState> ParseParticipationState(absl::string_view name) {
  return ParseState(kParticipationStates, name);
}
std::optional<SiteState> ParseSiteState(absl::string_view name) {
  return ParseState(kSiteStates, name);
}

bool IsTerminalRunState(absl::string_view name) {
  const std::optional<RunState> state = ParseRunState(name);
  return state.has_value() && IsTerminal(*state);
}

}  // namespace fedmi
