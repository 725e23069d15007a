// The whole `fedmi` command tree as main() builds it, parsed without a
// coordinator: global options after a subcommand, usage errors that name
// their actual problem, --version, and help text on every flag.
#include "cli/fedmi_app.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cli/command_support.h"
#include "common/base/cli_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

struct Outcome {
  int code;  // ParseCommandLine's: -1 means the command ran
  std::string out;
  std::string err;
};

class FedmiAppTest : public ::testing::Test {
 protected:
  FedmiAppTest() {
    unsetenv("FEDMI_CONFIG");
    AddFedmiCommands(app_, global_, result_, nullptr);
    // Commands that would dial a coordinator only record that they ran.
    app_.get_subcommand("site")->get_subcommand("list")->callback([this] { ran_ = "site list"; });
    app_.get_subcommand("run")->get_subcommand("status")->callback([this] { ran_ = "run status"; });
  }

  Outcome Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "fedmi");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int code = ParseCommandLine(app_, static_cast<int>(argv.size()), argv.data());
    std::string out = ::testing::internal::GetCapturedStdout();
    return Outcome{code, std::move(out), ::testing::internal::GetCapturedStderr()};
  }

  CLI::App app_{"fedmi under test", "fedmi"};
  GlobalOptions global_;
  CommandResult result_;
  std::string ran_;
};

TEST_F(FedmiAppTest, GlobalOptionsAreAcceptedAfterTheSubcommand) {
  const Outcome outcome =
      Parse({"site", "list", "--coordinator", "coord.example.org:7001", "--insecure", "--cert",
             "me.pem", "--key", "me.key", "--ca", "ca.pem"});
  EXPECT_EQ(outcome.code, -1) << outcome.err;
  EXPECT_EQ(ran_, "site list");
  EXPECT_EQ(global_.coordinator, "coord.example.org:7001");
  EXPECT_TRUE(global_.insecure);
  EXPECT_EQ(global_.cert, "me.pem");
  EXPECT_EQ(global_.key, "me.key");
  EXPECT_EQ(global_.ca, "ca.pem");
}

TEST_F(FedmiAppTest, GlobalOptionsBeforeTheSubcommandStillWork) {
  const Outcome outcome = Parse({"--coordinator=h:9", "site", "list"});
  EXPECT_EQ(outcome.code, -1) << outcome.err;
  EXPECT_EQ(ran_, "site list");
  EXPECT_EQ(global_.coordinator, "h:9");
}

TEST_F(FedmiAppTest, GlobalOptionsAfterANestedSubcommandAndItsArgument) {
  const Outcome outcome = Parse({"run", "status", "7", "--coordinator", "h:9", "--insecure"});
  EXPECT_EQ(outcome.code, -1) << outcome.err;
  EXPECT_EQ(ran_, "run status");
  EXPECT_EQ(global_.coordinator, "h:9");
  EXPECT_TRUE(global_.insecure);
}

TEST_F(FedmiAppTest, ConfigAfterTheSubcommandIsRead) {
  const std::string path =
      ::testing::TempDir() + "fedmi_app_test_" + std::to_string(getpid()) + ".toml";
  std::ofstream(path) << "coordinator = \"from-config:7002\"\n";
  const Outcome outcome = Parse({"site", "list", "--config", path});
  EXPECT_EQ(outcome.code, -1) << outcome.err;
  EXPECT_EQ(global_.coordinator, "from-config:7002");
  std::remove(path.c_str());
}

TEST_F(FedmiAppTest, AnUnknownFlagIsNamed) {
  const Outcome outcome = Parse({"--bogus-flag"});
  EXPECT_EQ(outcome.code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("unknown flag '--bogus-flag'"));
  EXPECT_THAT(outcome.err, Not(HasSubstr("subcommand is required")));
}

TEST_F(FedmiAppTest, AnUnknownFlagAfterASubcommandIsNamedAndNothingRuns) {
  const Outcome outcome = Parse({"site", "list", "--bogus=3"});
  EXPECT_EQ(outcome.code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("unknown flag '--bogus' (see `fedmi site list --help`)"));
  EXPECT_EQ(ran_, "");
}

TEST_F(FedmiAppTest, AMistypedFlagGetsASuggestion) {
  const Outcome outcome = Parse({"site", "list", "--coordinatr", "h:9"});
  EXPECT_EQ(outcome.code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("unknown flag '--coordinatr'; did you mean '--coordinator'?"));
}

TEST_F(FedmiAppTest, AnUnknownCommandIsNamed) {
  const Outcome outcome = Parse({"frobnicate"});
  EXPECT_EQ(outcome.code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("unknown command 'frobnicate' for `fedmi`"));
  EXPECT_THAT(outcome.err, Not(HasSubstr("did you mean")));
  EXPECT_THAT(outcome.err, Not(HasSubstr("subcommand is required")));
}

TEST_F(FedmiAppTest, AMistypedCommandGetsASuggestion) {
  EXPECT_THAT(Parse({"stie", "list"}).err,
              HasSubstr("unknown command 'stie' for `fedmi`; did you mean 'site'?"));
  EXPECT_THAT(Parse({"run", "stat"}).err,
              HasSubstr("unknown command 'stat' for `fedmi run`; did you mean 'status'?"));
}

TEST_F(FedmiAppTest, AMissingCommandListsTheChoices) {
  const Outcome outcome = Parse({"run"});
  EXPECT_EQ(outcome.code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("`fedmi run` needs a command: start, status"));
}

TEST_F(FedmiAppTest, VersionFlagPrintsTheBuild) {
  const Outcome outcome = Parse({"--version"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("fedmi 0."));
  EXPECT_THAT(outcome.out, HasSubstr("\ncommit:     "));
  EXPECT_THAT(outcome.out, HasSubstr("\nbuild type: "));
  EXPECT_THAT(outcome.out, HasSubstr("\ntraining:   "));
  EXPECT_THAT(outcome.err, IsEmpty());
}

TEST_F(FedmiAppTest, VersionCommandPrintsJson) {
  const Outcome outcome = Parse({"version", "--json"});
  ASSERT_EQ(outcome.code, -1) << outcome.err;
  EXPECT_EQ(result_.exit_code, kExitOk);
  const nlohmann::json json = nlohmann::json::parse(outcome.out);
  EXPECT_EQ(json["program"], "fedmi");
  ASSERT_TRUE(json["commit"].is_string());
  EXPECT_FALSE(json["commit"].get<std::string>().empty());
  ASSERT_TRUE(json["training"].is_boolean());
  EXPECT_EQ(json["libtorch"].is_string(), json["training"].get<bool>());
  EXPECT_TRUE(json["build_type"].is_string());
}

// Every flag and every command says what it is for in --help.
void CollectUnexplained(const CLI::App* app, const std::string& path,
                        std::vector<std::string>& out) {
  if (app->get_description().empty()) out.push_back(path + " (the command)");
  for (const CLI::Option* option : app->get_options()) {
    if (option->get_description().empty()) out.push_back(path + " " + option->get_name());
  }
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    CollectUnexplained(sub, path + " " + sub->get_name(), out);
  }
}

TEST_F(FedmiAppTest, EveryOptionAndCommandHasHelpText) {
  std::vector<std::string> unexplained;
  CollectUnexplained(&app_, "fedmi", unexplained);
  EXPECT_THAT(unexplained, IsEmpty());
}

}  // namespace
}  // namespace fedmi::cli
