// Usage errors that name their problem (common/base/cli_usage.h), through
// ParseCommandLine as fedmi-client and fedmi-coordinator call it: an
// unknown flag is reported before a missing required one.
#include "common/base/cli_usage.h"

#include <string>
#include <vector>

#include "common/base/cli_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(EditDistanceTest, CountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("site", "site"), 0u);
  EXPECT_EQ(EditDistance("stie", "site"), 1u);  // one swap of neighbours
  EXPECT_EQ(EditDistance("ca", "abc"), 3u);     // optimal string alignment, not Damerau's 2
  EXPECT_EQ(EditDistance("sit", "site"), 1u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
}

TEST(ClosestNameTest, SuggestsOnlyLikelyTypos) {
  const std::vector<std::string> commands = {"run", "site", "model", "data", "sim"};
  EXPECT_EQ(ClosestName("sitee", commands), "site");
  EXPECT_EQ(ClosestName("modle", commands), "model");
  EXPECT_EQ(ClosestName("mod", commands), "model");  // a prefix
  EXPECT_EQ(ClosestName("frobnicate", commands), "");
  EXPECT_EQ(ClosestName("xyz", commands), "");
}

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

// A daemon's command line: a required --site, as fedmi-client has.
class DaemonCommandLineTest : public ::testing::Test {
 protected:
  DaemonCommandLineTest() {
    app_.add_option("--site", site_, "this site's name")->required();
    app_.add_option("--heartbeat", heartbeat_, "seconds between heartbeats");
    app_.set_version_flag("--version", std::string("daemon 1.0"), "print the version");
  }

  Outcome Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "daemon");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int code = ParseCommandLine(app_, static_cast<int>(argv.size()), argv.data());
    std::string out = ::testing::internal::GetCapturedStdout();
    return Outcome{code, std::move(out), ::testing::internal::GetCapturedStderr()};
  }

  CLI::App app_{"a daemon", "daemon"};
  std::string site_;
  double heartbeat_ = 10;
};

TEST_F(DaemonCommandLineTest, AnUnknownFlagIsNamedBeforeAMissingRequiredOne) {
  const Outcome outcome = Parse({"--bogus"});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("error: unknown flag '--bogus' (see `daemon --help`)"));
  EXPECT_THAT(outcome.err, Not(HasSubstr("--site is required")));
}

TEST_F(DaemonCommandLineTest, AMistypedFlagGetsASuggestion) {
  const Outcome outcome = Parse({"--site", "a", "--hearbeat", "3"});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("unknown flag '--hearbeat'; did you mean '--heartbeat'?"));
}

TEST_F(DaemonCommandLineTest, AStrayArgumentIsNamed) {
  const Outcome outcome = Parse({"--site", "a", "extra"});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("unexpected argument 'extra'"));
}

TEST_F(DaemonCommandLineTest, AMissingRequiredFlagKeepsCliElevensMessage) {
  const Outcome outcome = Parse({});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("--site is required"));
}

TEST_F(DaemonCommandLineTest, VersionNeedsNoRequiredFlag) {
  const Outcome outcome = Parse({"--version"});
  EXPECT_EQ(outcome.code, 0);
  EXPECT_EQ(outcome.out, "daemon 1.0\n");
}

TEST_F(DaemonCommandLineTest, AGoodCommandLineGoesOn) {
  const Outcome outcome = Parse({"--site", "st-marys", "--heartbeat", "2"});
  EXPECT_EQ(outcome.code, -1) << outcome.err;
  EXPECT_EQ(site_, "st-marys");
  EXPECT_EQ(heartbeat_, 2);
}

// A command's own flag given before the command's name reaches its parent,
// which does not know it: the message says where it goes instead of
// suggesting the very flag that was typed.
TEST(CommandTreeUsageTest, ACommandsFlagBeforeTheCommandSaysWhereItGoes) {
  CLI::App app{"a tool", "tool"};
  app.require_subcommand(1);
  app.fallthrough();
  std::string coordinator;
  app.add_option("--coordinator", coordinator, "where");
  CLI::App* site = app.add_subcommand("site", "sites");
  site->require_subcommand(1);
  CLI::App* list = site->add_subcommand("list", "list sites");
  bool json = false;
  list->add_flag("--json", json, "JSON");
  std::vector<std::string> args = {"tool", "--json", "site", "list"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  ::testing::internal::CaptureStderr();
  const int code = ParseCommandLine(app, static_cast<int>(argv.size()), argv.data());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("'--json' is an option of `tool site list`: put it after `tool site "
                             "list`"));
  EXPECT_THAT(err, Not(HasSubstr("did you mean '--json'")));
}

}  // namespace
}  // namespace fedmi
