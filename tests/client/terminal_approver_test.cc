// TerminalApprover (client/site_policy.h): the site operator's yes or no to
// each new run spec, remembered across restarts.
#include <sstream>
#include <string>

#include "client/site_policy.h"
#include "tests/client/site_policy_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(TerminalApproverTest, YesApprovesAndIsRememberedAcrossRestarts) {
  ScratchDir dir;
  const std::string approvals = dir.Join("approved-specs.txt");
  const v1::RunSpec spec = CnnSpec();
  const std::string sha = RunSpecSha256Hex(spec);
  {
    std::istringstream in("maybe\nyes\n");
    std::ostringstream out;
    TerminalApproverOptions options;
    options.coordinator = "coord.example:7000";
    TerminalApprover approver(in, out, approvals, options);
    EXPECT_THAT(approver.Approve(spec, sha), IsOk());
    EXPECT_THAT(out.str(), HasSubstr(sha));
    EXPECT_THAT(out.str(), HasSubstr("coord.example:7000"));
    EXPECT_THAT(out.str(), HasSubstr("cnn"));
    EXPECT_THAT(out.str(), HasSubstr("local epochs         1"));
    // Asked once more after the unclear answer.
    EXPECT_NE(out.str().find("Type yes or no"), out.str().rfind("Type yes or no"));
    // Known now: not asked again.
    EXPECT_THAT(approver.Approve(spec, sha), IsOk());
  }
  EXPECT_THAT(ReadFile(approvals), StartsWith(sha));

  std::istringstream empty;
  std::ostringstream out;
  TerminalApprover restarted(empty, out, approvals);
  EXPECT_THAT(restarted.Approve(spec, sha), IsOk());
  EXPECT_EQ(out.str(), "");
}

TEST(TerminalApproverTest, NoRefusesAndIsNotPersisted) {
  ScratchDir dir;
  const std::string approvals = dir.Join("approved-specs.txt");
  const v1::RunSpec spec = CnnSpec();
  const std::string sha = RunSpecSha256Hex(spec);
  std::istringstream in("No\n");
  std::ostringstream out;
  TerminalApprover approver(in, out, approvals);
  const auto rejected =
      StatusIs(absl::StatusCode::kPermissionDenied, "site policy: rejected by the site operator");
  EXPECT_THAT(approver.Approve(spec, sha), rejected);
  // The same run's next round is refused without asking again.
  EXPECT_THAT(approver.Approve(spec, sha), rejected);
  EXPECT_EQ(ReadFile(approvals), "");
}

TEST(TerminalApproverTest, ClosedInputRefuses) {
  ScratchDir dir;
  std::istringstream empty;
  std::ostringstream out;
  TerminalApprover approver(empty, out, dir.Join("approved-specs.txt"));
  EXPECT_THAT(approver.Approve(CnnSpec(), RunSpecSha256Hex(CnnSpec())),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no answer")));
}

TEST(TerminalApproverTest, WithoutATerminalRefusesUnapprovedSpecsAtOnce) {
  ScratchDir dir;
  const std::string approvals = dir.Join("approved-specs.txt");
  const v1::RunSpec spec = CnnSpec();
  const std::string sha = RunSpecSha256Hex(spec);
  std::istringstream in("yes\n");  // must not be read
  std::ostringstream out;
  TerminalApproverOptions options;
  options.interactive = false;
  TerminalApprover approver(in, out, approvals, options);
  EXPECT_THAT(approver.Approve(spec, sha),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("not a terminal"), HasSubstr(sha), HasSubstr(approvals))));
  EXPECT_EQ(out.str(), "");

  // A hash added by hand is approved without a restart.
  WriteFile(approvals, "# approved by the data protection officer\n" + sha + "  # cnn\n");
  EXPECT_THAT(approver.Approve(spec, sha), IsOk());
}

}  // namespace
}  // namespace fedmi
