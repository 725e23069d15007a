#include "cli/child_process.h"

#include <stdlib.h>

#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Waits for `process` to exit on its own; its exit status.
int WaitForExit(ChildProcess& process) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (process.Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  return process.Stop();
}

TEST(ChildProcessTest, EnvironmentEntriesReplaceTheParentsForTheChildAlone) {
  ScratchDir scratch;
  setenv("FEDMI_CHILD_TEST_SHARED", "from-parent", 1);
  setenv("FEDMI_CHILD_TEST_KEPT", "kept", 1);
  ASSERT_OK_AND_ASSIGN(
      auto child,
      ChildProcess::Spawn({"/bin/sh", "-c", "echo $FEDMI_CHILD_TEST_SHARED $FEDMI_CHILD_TEST_KEPT"},
                          scratch.Join("child.log"), {"FEDMI_CHILD_TEST_SHARED=from-child"}));
  EXPECT_EQ(WaitForExit(*child), 0);
  EXPECT_THAT(child->LogTail(), HasSubstr("from-child kept"));
  EXPECT_THAT(child->LogTail(), Not(HasSubstr("from-parent")));
  EXPECT_STREQ(getenv("FEDMI_CHILD_TEST_SHARED"), "from-parent");
}

TEST(ChildProcessTest, ExitStatusAndKill) {
  ScratchDir scratch;
  ASSERT_OK_AND_ASSIGN(auto failing,
                       ChildProcess::Spawn({"/bin/sh", "-c", "exit 3"}, scratch.Join("fail.log")));
  EXPECT_EQ(WaitForExit(*failing), 3);
  ASSERT_OK_AND_ASSIGN(auto sleeping,
                       ChildProcess::Spawn({"/bin/sleep", "30"}, scratch.Join("sleep.log")));
  EXPECT_TRUE(sleeping->Running());
  sleeping->Kill();
  EXPECT_FALSE(sleeping->Running());
}

TEST(ChildProcessTest, UnwritableLogIsAnError) {
  EXPECT_THAT(ChildProcess::Spawn({"/bin/true"}, "/nonexistent-dir/x.log"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("/nonexistent-dir/x.log")));
}

}  // namespace
}  // namespace fedmi::cli
