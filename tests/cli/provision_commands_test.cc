// Drives `fedmi provision ...` through the same CLI11 app main() builds.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/base/env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
};

Outcome Provision(std::vector<std::string> args) {
  CLI::App app{"fedmi"};
  app.require_subcommand(1);
  GlobalOptions global;
  CommandResult result;
  AddProvisionCommands(app, global, result);
  args.insert(args.begin(), "provision");
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int code;
  try {
    app.parse(args);
    code = result.exit_code;
  } catch (const CLI::ParseError&) {
    code = kExitUsage;
  }
  Outcome outcome{code, ::testing::internal::GetCapturedStdout(),
                  ::testing::internal::GetCapturedStderr()};
  return outcome;
}

TEST(ProvisionCommandsTest, InitAddAndShow) {
  ScratchDir scratch;
  // Normalised, as the commands print it (TempDir() may end in a slash).
  const std::string dir =
      std::filesystem::path(scratch.Join("project")).lexically_normal().string();
  Outcome init = Provision({"init", "--project", "stmarys", "--out", dir});
  ASSERT_EQ(init.exit_code, kExitOk) << init.err;
  EXPECT_THAT(init.out, HasSubstr("add-coordinator --dir " + dir));

  Outcome coordinator =
      Provision({"add-coordinator", "--dir", dir, "--host", "coord.example.org", "--port", "7443"});
  ASSERT_EQ(coordinator.exit_code, kExitOk) << coordinator.err;
  EXPECT_THAT(coordinator.out, HasSubstr("kit: " + dir + "/kits/coordinator/"));
  EXPECT_THAT(coordinator.out, HasSubstr("fedmi-coordinator --config"));
  EXPECT_THAT(coordinator.out, HasSubstr("issued audit-signer 'coordinator-audit'"));
  // It has one already: the command is for kits from before audit signers.
  Outcome audit_signer = Provision({"add-audit-signer", "coordinator", "--dir", dir});
  EXPECT_EQ(audit_signer.exit_code, kExitFailure);
  EXPECT_THAT(audit_signer.err, HasSubstr("'coordinator-audit' is already provisioned"));

  Outcome site = Provision({"add-site", "site-1", "--dir", dir, "--days", "30"});
  ASSERT_EQ(site.exit_code, kExitOk) << site.err;
  EXPECT_THAT(site.out, HasSubstr("fedmi-client --config"));
  ASSERT_OK_AND_ASSIGN(std::string client, ReadFileToString(dir + "/kits/site-1/client.toml"));
  EXPECT_THAT(client, HasSubstr("coordinator = \"coord.example.org:7443\""));

  Outcome again = Provision({"add-site", "site-1", "--dir", dir});
  EXPECT_EQ(again.exit_code, kExitFailure);
  EXPECT_THAT(again.err, HasSubstr("error: site 'site-1' is already provisioned"));

  Outcome show = Provision({"show", "--dir", dir, "--json"});
  ASSERT_EQ(show.exit_code, kExitOk) << show.err;
  nlohmann::json json = nlohmann::json::parse(show.out);
  EXPECT_EQ(json["project"], "stmarys");
  ASSERT_EQ(json["parties"].size(), 3u);
  EXPECT_EQ(json["parties"][1]["role"], "audit-signer");
  EXPECT_EQ(json["parties"][1]["kit"], dir + "/kits/coordinator");
  EXPECT_EQ(json["parties"][2]["name"], "site-1");
  EXPECT_EQ(json["parties"][2]["role"], "site");
  EXPECT_GE(json["parties"][2]["days_left"].get<int>(), 29);
  EXPECT_EQ(json["parties"][2]["kit"], dir + "/kits/site-1");

  Outcome table = Provision({"show", "--dir", dir});
  ASSERT_EQ(table.exit_code, kExitOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("DAYS LEFT"));
  EXPECT_THAT(table.out, HasSubstr("site-1"));
}

TEST(ProvisionCommandsTest, UsageAndMissingProjectErrors) {
  ScratchDir scratch;
  EXPECT_EQ(Provision({"add-site", "bad/name", "--dir", scratch.path()}).exit_code, kExitUsage);
  EXPECT_EQ(Provision({"add-coordinator", "--dir", scratch.path()}).exit_code, kExitUsage);
  Outcome missing = Provision({"add-admin", "alice", "--dir", scratch.path()});
  EXPECT_EQ(missing.exit_code, kExitFailure);
  EXPECT_THAT(missing.err, HasSubstr("fedmi provision init"));
}

}  // namespace
}  // namespace fedmi::cli
