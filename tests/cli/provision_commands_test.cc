// Drives `fedmi provision ...` through the same CLI11 app main() builds.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/base/env.h"
#include "common/crypto/revocation_list.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

using Outcome = CliOutcome;

Outcome Provision(std::vector<std::string> args) {
  return RunCliCommands(AddProvisionCommands, "provision", std::move(args));
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

TEST(ProvisionCommandsTest, RenewRevokeAndCrl) {
  ScratchDir scratch;
  const std::string dir = scratch.Join("project");
  ASSERT_EQ(Provision({"init", "--project", "stmarys", "--out", dir}).exit_code, kExitOk);
  ASSERT_EQ(Provision({"add-site", "site-1", "--dir", dir}).exit_code, kExitOk);
  ASSERT_EQ(Provision({"add-admin", "bob", "--dir", dir}).exit_code, kExitOk);
  ASSERT_OK_AND_ASSIGN(std::string old_cert, ReadFileToString(dir + "/kits/site-1/cert.pem"));
  ASSERT_OK_AND_ASSIGN(std::string bob_cert, ReadFileToString(dir + "/kits/bob/cert.pem"));

  Outcome renew = Provision({"renew", "site-1", "--dir", dir, "--days", "90"});
  ASSERT_EQ(renew.exit_code, kExitOk) << renew.err;
  EXPECT_THAT(renew.out, HasSubstr("renewed site 'site-1'"));
  EXPECT_THAT(renew.out, HasSubstr("fedmi provision crl --dir " + dir));
  Outcome revoke = Provision({"revoke", "bob", "--dir", dir, "--reason", "laptop stolen"});
  ASSERT_EQ(revoke.exit_code, kExitOk) << revoke.err;
  EXPECT_THAT(revoke.out, HasSubstr("fedmi revoke bob --role admin"));

  const std::string crl_path = scratch.Join("crl.pem");
  Outcome crl = Provision({"crl", "--dir", dir, "--out", crl_path, "--json"});
  ASSERT_EQ(crl.exit_code, kExitOk) << crl.err;
  EXPECT_EQ(nlohmann::json::parse(crl.out)["serials"].size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string crl_pem, ReadFileToString(crl_path));
  ASSERT_OK_AND_ASSIGN(std::string ca_pem, ReadFileToString(dir + "/ca/ca.crt"));
  ASSERT_OK_AND_ASSIGN(RevocationList list, RevocationList::FromPem(crl_pem, ca_pem));
  EXPECT_FALSE(list.CheckCertificate(old_cert).ok());
  EXPECT_FALSE(list.CheckCertificate(bob_cert).ok());
  ASSERT_OK_AND_ASSIGN(std::string new_cert, ReadFileToString(dir + "/kits/site-1/cert.pem"));
  EXPECT_THAT(list.CheckCertificate(new_cert), IsOk());
  // The default place is the project directory.
  ASSERT_EQ(Provision({"crl", "--dir", dir}).exit_code, kExitOk);
  EXPECT_TRUE(std::filesystem::exists(dir + "/crl.pem"));

  Outcome show = Provision({"show", "--dir", dir});
  EXPECT_THAT(show.out, HasSubstr("revoked"));
}

TEST(ProvisionCommandsTest, RenewRevokeAndCrlUsageErrors) {
  ScratchDir scratch;
  const std::string dir = scratch.Join("project");
  ASSERT_EQ(Provision({"init", "--project", "stmarys", "--out", dir}).exit_code, kExitOk);
  ASSERT_EQ(Provision({"add-site", "site-1", "--dir", dir}).exit_code, kExitOk);
  Outcome no_reason = Provision({"revoke", "site-1", "--dir", dir});
  EXPECT_EQ(no_reason.exit_code, kExitUsage);
  Outcome bad_days = Provision({"renew", "site-1", "--dir", dir, "--days", "0"});
  EXPECT_EQ(bad_days.exit_code, kExitUsage);
  EXPECT_THAT(bad_days.err, HasSubstr("--days must be 1 to"));
  Outcome bad_name = Provision({"renew", "bad/name", "--dir", dir});
  EXPECT_EQ(bad_name.exit_code, kExitUsage);
  EXPECT_THAT(bad_name.err, HasSubstr("error: name"));
  EXPECT_EQ(Provision({"crl", "--dir", dir, "--days", "0"}).exit_code, kExitUsage);
  Outcome unknown = Provision({"renew", "site-9", "--dir", dir});
  EXPECT_EQ(unknown.exit_code, kExitFailure);
  EXPECT_THAT(unknown.err, HasSubstr("'site-9' was never provisioned"));
  Outcome twice = Provision({"revoke", "site-1", "--dir", dir, "--reason", "a"});
  ASSERT_EQ(twice.exit_code, kExitOk);
  twice = Provision({"revoke", "site-1", "--dir", dir, "--reason", "b"});
  EXPECT_EQ(twice.exit_code, kExitFailure);
  EXPECT_THAT(twice.err, HasSubstr("fedmi provision renew site-1"));
}

TEST(ProvisionCommandsTest, NewCommandsExplainThemselves) {
  CLI::App app{"fedmi"};
  GlobalOptions global;
  CommandResult result;
  AddProvisionCommands(app, global, result);
  CLI::App* provision = app.get_subcommand("provision");
  const std::string renew = provision->get_subcommand("renew")->help();
  EXPECT_THAT(renew, HasSubstr("fresh key and certificate"));
  EXPECT_THAT(renew, HasSubstr("--days"));
  EXPECT_THAT(renew, HasSubstr("--dir"));
  const std::string revoke = provision->get_subcommand("revoke")->help();
  EXPECT_THAT(revoke, HasSubstr("provision crl"));
  EXPECT_THAT(revoke, HasSubstr("--reason"));
  const std::string crl = provision->get_subcommand("crl")->help();
  EXPECT_THAT(crl, HasSubstr("signed by the CA"));
  EXPECT_THAT(crl, HasSubstr("--out"));
  EXPECT_THAT(crl, HasSubstr("- for stdout"));
}

}  // namespace
}  // namespace fedmi::cli
