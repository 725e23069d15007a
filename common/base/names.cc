#include "common/base/names.h"

#include "common/base/enum_names.h"

namespace fedmi {
namespace {

constexpr EnumName<RunState> kRunStates[] = {
    {RunState::kPending, "pending"}, {RunState::kRunning, "running"}, {RunState::kDone, "done"},
    {RunState::kFailed, "failed"},   {RunState::kAborted, "aborted"},
};
constexpr EnumName<RoundState> kRoundStates[] = {
    {RoundState::kCommitted, "committed"},
    {RoundState::kEvaluated, "evaluated"},
};
constexpr EnumName<ParticipationState> kParticipationStates[] = {
    {ParticipationState::kTraining, "training"}, {ParticipationState::kEvaluating, "evaluating"},
    {ParticipationState::kUploaded, "uploaded"}, {ParticipationState::kEvaluated, "evaluated"},
    {ParticipationState::kDropped, "dropped"},   {ParticipationState::kRefused, "refused"},
};
constexpr EnumName<SiteState> kSiteStates[] = {
    {SiteState::kActive, "active"},
    {SiteState::kRevoked, "revoked"},
};

}  // namespace

bool IsTerminal(RunState state) {
  return state == RunState::kDone || state == RunState::kFailed || state == RunState::kAborted;
}

const char* StateName(RunState state) { return NameOf(kRunStates, state); }
const char* StateName(RoundState state) { return NameOf(kRoundStates, state); }
const char* StateName(ParticipationState state) { return NameOf(kParticipationStates, state); }
const char* StateName(SiteState state) { return NameOf(kSiteStates, state); }

std::optional<RunState> ParseRunState(absl::string_view name) {
  return ParseName(kRunStates, name);
}
std::optional<RoundState> ParseRoundState(absl::string_view name) {
  return ParseName(kRoundStates, name);
}
std::optional<ParticipationState> ParseParticipationState(absl::string_view name) {
  return ParseName(kParticipationStates, name);
}
std::optional<SiteState> ParseSiteState(absl::string_view name) {
  return ParseName(kSiteStates, name);
}

bool IsTerminalRunState(absl::string_view name) {
  const std::optional<RunState> state = ParseRunState(name);
  return state.has_value() && IsTerminal(*state);
}

}  // namespace fedmi
