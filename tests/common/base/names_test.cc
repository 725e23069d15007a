#include "common/base/names.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

// The names are stored in SQLite and sent in admin.proto's `state` strings:
// they are pinned here so that a rename cannot slip through.
TEST(NamesTest, RunStatesHaveTheStoredNamesAndRoundTrip) {
  const std::pair<RunState, const char*> expected[] = {{RunState::kPending, "pending"},
                                                       {RunState::kRunning, "running"},
                                                       {RunState::kDone, "done"},
                                                       {RunState::kFailed, "failed"},
                                                       {RunState::kAborted, "aborted"}};
  for (const auto& [state, name] : expected) {
    EXPECT_STREQ(StateName(state), name);
    EXPECT_EQ(ParseRunState(name), state) << name;
  }
}

TEST(NamesTest, RoundStatesHaveTheStoredNamesAndRoundTrip) {
  const std::pair<RoundState, const char*> expected[] = {{RoundState::kCommitted, "committed"},
                                                         {RoundState::kEvaluated, "evaluated"}};
  for (const auto& [state, name] : expected) {
    EXPECT_STREQ(StateName(state), name);
    EXPECT_EQ(ParseRoundState(name), state) << name;
  }
}

TEST(NamesTest, ParticipationStatesHaveTheStoredNamesAndRoundTrip) {
  const std::pair<ParticipationState, const char*> expected[] = {
      {ParticipationState::kTraining, "training"}, {ParticipationState::kEvaluating, "evaluating"},
      {ParticipationState::kUploaded, "uploaded"}, {ParticipationState::kEvaluated, "evaluated"},
      {ParticipationState::kDropped, "dropped"},   {ParticipationState::kRefused, "refused"}};
  for (const auto& [state, name] : expected) {
    EXPECT_STREQ(StateName(state), name);
    EXPECT_EQ(ParseParticipationState(name), state) << name;
  }
}

TEST(NamesTest, SiteStatesHaveTheStoredNamesAndRoundTrip) {
  const std::pair<SiteState, const char*> expected[] = {{SiteState::kActive, "active"},
                                                        {SiteState::kRevoked, "revoked"}};
  for (const auto& [state, name] : expected) {
    EXPECT_STREQ(StateName(state), name);
    EXPECT_EQ(ParseSiteState(name), state) << name;
  }
}

TEST(NamesTest, ParsingRefusesUnknownAndDifferentlySpelledNames) {
  EXPECT_EQ(ParseRunState(""), std::nullopt);
  EXPECT_EQ(ParseRunState("Running"), std::nullopt);
  EXPECT_EQ(ParseRunState("committed"), std::nullopt);
  EXPECT_EQ(ParseRoundState("running"), std::nullopt);
  EXPECT_EQ(ParseParticipationState("active"), std::nullopt);
  EXPECT_EQ(ParseSiteState("revoked "), std::nullopt);
}

TEST(NamesTest, OnlyDoneFailedAndAbortedRunsAreTerminal) {
  EXPECT_FALSE(IsTerminal(RunState::kPending));
  EXPECT_FALSE(IsTerminal(RunState::kRunning));
  EXPECT_TRUE(IsTerminal(RunState::kDone));
  EXPECT_TRUE(IsTerminal(RunState::kFailed));
  EXPECT_TRUE(IsTerminal(RunState::kAborted));

  EXPECT_TRUE(IsTerminalRunState("done"));
  EXPECT_TRUE(IsTerminalRunState("failed"));
  EXPECT_TRUE(IsTerminalRunState("aborted"));
  EXPECT_FALSE(IsTerminalRunState("running"));
  EXPECT_FALSE(IsTerminalRunState("pending"));
  EXPECT_FALSE(IsTerminalRunState("garbage"));
  EXPECT_FALSE(IsTerminalRunState(""));
}

}  // namespace
}  // namespace fedmi
