// The harness's process and port logic, driven with stand-in binaries
// (shell scripts found through $FEDMI_BIN_DIR) instead of the real
// coordinator and client: no socket is ever served.
#include "cli/local_federation.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

// A site that logs to `log_path` and leaves every other option at its default.
SiteOptions SiteLoggingTo(const std::string& name, const std::string& log_path) {
  SiteOptions options;
  options.name = name;
  options.log_path = log_path;
  return options;
}

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A stand-in binary: it logs its arguments and FEDMI_FAKE_MODE, exits 1 if
// that is "exit", otherwise writes port 1 (where nothing listens) to its
// --port-file if it has one and sleeps.
void WriteStandIn(const std::string& path) {
  std::ofstream(path) << "#!/bin/sh\n"
                         "echo \"args: $*\"\n"
                         "echo \"mode: $FEDMI_FAKE_MODE\"\n"
                         "if [ \"$FEDMI_FAKE_MODE\" = exit ]; then echo 'cannot open'; exit 1; fi\n"
                         "while [ $# -gt 0 ]; do\n"
                         "  if [ \"$1\" = --port-file ]; then echo 1 > \"$2\"; fi\n"
                         "  shift\n"
                         "done\n"
                         "exec sleep 30\n";
  chmod(path.c_str(), 0700);
}

class LocalFederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteStandIn(scratch_.Join("fedmi-coordinator"));
    WriteStandIn(scratch_.Join("fedmi-client"));
    setenv("FEDMI_BIN_DIR", scratch_.path().c_str(), 1);
  }
  void TearDown() override { unsetenv("FEDMI_BIN_DIR"); }

  CoordinatorOptions Options() const {
    CoordinatorOptions options;
    options.port_file = scratch_.Join("port");
    options.db_path = scratch_.Join("state.db");
    options.log_path = scratch_.Join("coordinator.log");
    options.start_timeout = absl::Seconds(10);
    return options;
  }

  // The log once the stand-in has written its "mode:" line.
  static std::string LogOf(ChildProcess& process) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::string tail;
    while (absl::Now() < deadline) {
      tail = process.LogTail();
      if (tail.find("mode:") != std::string::npos) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return tail;
  }

  ScratchDir scratch_;
};

TEST_F(LocalFederationTest, ProjectIssuesKitsAndNamesTheirFiles) {
  ASSERT_OK_AND_ASSIGN(LocalProject project,
                       LocalProject::Create(scratch_.Join("pki"), "unit", "admin-1"));
  EXPECT_FALSE(project.insecure());
  EXPECT_EQ(project.admin(), "admin-1");
  ASSERT_THAT(project.Add("site-1", PartyRole::kSite), IsOk());
  EXPECT_THAT(project.TransportFlags("site-1"),
              ElementsAre("--cert", scratch_.Join("pki/kits/site-1/cert.pem"), "--key",
                          scratch_.Join("pki/kits/site-1/key.pem"), "--ca",
                          scratch_.Join("pki/kits/site-1/ca.pem")));
  for (const char* party : {"coordinator", "admin-1", "site-1"}) {
    EXPECT_THAT(ReadFileToString(project.KitFile(party, "cert.pem")), IsOk()) << party;
  }
  EXPECT_THAT(project.Add("site-1", PartyRole::kSite), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(LocalProject::Create(scratch_.Join("pki"), "unit", "admin-1"),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(LocalFederationTest, InsecureProjectHasNoKits) {
  const LocalProject project = LocalProject::Insecure();
  EXPECT_TRUE(project.insecure());
  EXPECT_TRUE(project.Transport("anyone").insecure);
  EXPECT_THAT(project.TransportFlags("anyone"), ElementsAre("--insecure"));
  EXPECT_THAT(project.Add("site-1", PartyRole::kSite), IsOk());
}

TEST_F(LocalFederationTest, CoordinatorIsFoundOnThePortItWrites) {
  CoordinatorOptions options = Options();
  options.env = {"FEDMI_FAKE_MODE=serve"};
  std::ofstream(options.port_file) << "999\n";  // a stale file from an earlier run
  ASSERT_OK_AND_ASSIGN(auto coordinator,
                       LocalCoordinator::Start(LocalProject::Insecure(), options));
  EXPECT_EQ(coordinator->address(), "127.0.0.1:1");
  const std::string log = LogOf(coordinator->process());
  EXPECT_THAT(log,
              HasSubstr(absl::StrCat("args: --listen 127.0.0.1:0 --port-file ", options.port_file,
                                     " --db ", options.db_path, " --insecure")));
  EXPECT_THAT(log, HasSubstr("mode: serve"));
}

TEST_F(LocalFederationTest, CoordinatorThatExitsIsReportedWithItsLog) {
  CoordinatorOptions options = Options();
  options.env = {"FEDMI_FAKE_MODE=exit"};
  EXPECT_THAT(LocalCoordinator::Start(LocalProject::Insecure(), options),
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr("did not start"), HasSubstr("cannot open"))));
}

TEST_F(LocalFederationTest, SiteGetsOnlyTheFlagsItsOptionsSet) {
  SiteOptions options;
  options.name = "site-1";
  options.log_path = scratch_.Join("site-1.log");
  options.data = "shard.npz";
  options.policy = "policy.toml";
  options.threads = 2;
  options.give_up_after_s = 0;
  options.heartbeat_s = 1;
  ASSERT_OK_AND_ASSIGN(auto site, StartSite(LocalProject::Insecure(), "127.0.0.1:7", options));
  EXPECT_THAT(LogOf(*site), HasSubstr("args: --coordinator 127.0.0.1:7 --site site-1 --threads 2 "
                                      "--heartbeat 1 --insecure --data shard.npz "
                                      "--policy policy.toml"));

  options = SiteLoggingTo("site-2", scratch_.Join("site-2.log"));
  ASSERT_OK_AND_ASSIGN(site, StartSite(LocalProject::Insecure(), "127.0.0.1:7", options));
  EXPECT_THAT(LogOf(*site),
              HasSubstr("args: --coordinator 127.0.0.1:7 --site site-2 --give-up-after 60 "
                        "--insecure\n"));
}

TEST_F(LocalFederationTest, WaitForSitesFailsEarlyWhenASiteExits) {
  ASSERT_OK_AND_ASSIGN(auto coordinator,
                       LocalCoordinator::Start(LocalProject::Insecure(), Options()));
  SiteOptions options = SiteLoggingTo("site-1", scratch_.Join("site-1.log"));
  options.env = {"FEDMI_FAKE_MODE=exit"};
  ASSERT_OK_AND_ASSIGN(auto site,
                       StartSite(LocalProject::Insecure(), coordinator->address(), options));
  const absl::Time started = absl::Now();
  EXPECT_THAT(WaitForSites(coordinator->admin(), {site.get()}, 1, absl::Seconds(60)),
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr("site process exited"), HasSubstr("cannot open"))));
  EXPECT_LT(absl::Now() - started, absl::Seconds(30));
}

TEST_F(LocalFederationTest, WorkDirIsTheOneAskedForOrANewOne) {
  ASSERT_OK_AND_ASSIGN(std::string asked, MakeWorkDir(scratch_.Join("work"), "unit"));
  EXPECT_EQ(asked, scratch_.Join("work"));
  struct stat info;
  EXPECT_EQ(stat(asked.c_str(), &info), 0);
  setenv("TMPDIR", scratch_.path().c_str(), 1);
  ASSERT_OK_AND_ASSIGN(std::string fresh, MakeWorkDir("", "unit"));
  unsetenv("TMPDIR");
  EXPECT_THAT(fresh, ::testing::StartsWith(scratch_.Join("unit-")));
  EXPECT_EQ(stat(fresh.c_str(), &info), 0);
}

}  // namespace
}  // namespace fedmi::cli
