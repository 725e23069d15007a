// `fedmi revoke`, `fedmi revocations` and the `site revoke` alias through
// the CLI11 app main() builds: usage errors exit 2 before any coordinator
// is dialled, and every command and flag explains itself. (Revocation
// against a coordinator: tests/coordinator/federation_revocation_test.cc.)
#include <algorithm>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int exit_code;
  std::string err;
};

class RevokeCommandsTest : public ::testing::Test {
 protected:
  RevokeCommandsTest() {
    AddSiteCommands(app_, global_, result_);
    AddRevokeCommands(app_, global_, result_);
    // Nothing listens here: a command that got past its checks fails to connect.
    global_.coordinator = "127.0.0.1:1";
    global_.insecure = true;
  }

  Outcome Run(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
    ::testing::internal::CaptureStderr();
    int code;
    try {
      app_.parse(args);
      code = result_.exit_code;
    } catch (const CLI::ParseError& e) {
      std::cerr << e.what() << "\n";
      code = kExitUsage;
    }
    return Outcome{code, ::testing::internal::GetCapturedStderr()};
  }

  CLI::App app_{"fedmi"};
  GlobalOptions global_;
  CommandResult result_;
};

TEST_F(RevokeCommandsTest, UsageErrorsExitTwoWithAClearMessage) {
  Outcome no_reason = Run({"revoke", "bob", "--role", "admin"});
  EXPECT_EQ(no_reason.exit_code, kExitUsage);
  EXPECT_THAT(no_reason.err, HasSubstr("--reason is required"));
}

TEST_F(RevokeCommandsTest, AnUnknownRoleIsAUsageError) {
  Outcome bad_role = Run({"revoke", "bob", "--role", "wizard", "--reason", "x"});
  EXPECT_EQ(bad_role.exit_code, kExitUsage);
  EXPECT_THAT(bad_role.err, HasSubstr("wizard"));
}

TEST_F(RevokeCommandsTest, ABadNameIsAUsageError) {
  Outcome bad_name = Run({"revoke", "bad/name", "--reason", "x"});
  EXPECT_EQ(bad_name.exit_code, kExitUsage);
  EXPECT_THAT(bad_name.err, HasSubstr("error: name"));
  Outcome alias = Run({"site", "revoke", "bad/name"});
  EXPECT_EQ(alias.exit_code, kExitUsage);
}

TEST_F(RevokeCommandsTest, AValidRequestReachesForTheCoordinator) {
  Outcome valid = Run({"revoke", "bob", "--role", "admin", "--reason", "laptop stolen"});
  EXPECT_EQ(valid.exit_code, kExitFailure);
  EXPECT_THAT(valid.err, HasSubstr("error: "));
}

TEST_F(RevokeCommandsTest, EveryCommandAndFlagExplainsItself) {
  const std::string revoke = app_.get_subcommand("revoke")->help();
  EXPECT_THAT(revoke, HasSubstr("site, admin or auditor"));
  EXPECT_THAT(revoke, HasSubstr("cannot revoke itself"));
  EXPECT_THAT(revoke, HasSubstr("--reason"));
  EXPECT_THAT(revoke, HasSubstr("--role"));
  EXPECT_THAT(revoke, HasSubstr("--json"));
  const std::string list = app_.get_subcommand("revocations")->help();
  EXPECT_THAT(list, HasSubstr("by whom and why"));
  const std::string alias = app_.get_subcommand("site")->get_subcommand("revoke")->help();
  EXPECT_THAT(alias, HasSubstr("fedmi revoke NAME --role site"));
}

}  // namespace
}  // namespace fedmi::cli
