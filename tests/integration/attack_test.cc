// Simulation-only attack injection (`fedmi sim --attack`): the production
// fedmi-client refuses the setting in every form, fedmi-sim-site takes only
// the kinds it implements, and a simulation with attacking sites runs them
// and reports them.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

// A config the daemon would otherwise start with: it gives up after a
// second on an address nothing listens on, so a daemon that ignored the
// attack key would exit 1, not 2.
std::string WriteConfig(const ScratchDir& scratch, const std::string& extra) {
  const std::string path = scratch.Join("client.toml");
  std::ofstream(path) << "coordinator = \"127.0.0.1:1\"\nsite = \"site-1\"\ninsecure = true\n"
                         "give-up-after = 1\n"
                      << extra;
  return path;
}

TEST(AttackTest, TheProductionClientRefusesTheAttackFlag) {
  for (const std::string flag : {" --attack sign-flip", " --attack=scaled"}) {
    CommandOutput out = RunCommand(
        absl::StrCat(Binary("fedmi-client"), " --site site-1 --insecure --coordinator 127.0.0.1:1",
                     " --give-up-after 1", flag, " 2>&1"));
    EXPECT_EQ(out.exit_code, 2) << flag << ": " << out.stdout_text;
    EXPECT_THAT(out.stdout_text, HasSubstr("--attack is a simulation-only setting")) << flag;
  }
}

TEST(AttackTest, TheProductionClientRefusesAnAttackKeyInItsConfig) {
  ScratchDir scratch;
  // The same config without it starts, and gives up on the coordinator.
  const std::string clean = WriteConfig(scratch, "");
  CommandOutput started =
      RunCommand(absl::StrCat(Binary("fedmi-client"), " --config ", clean, " 2>&1"));
  EXPECT_EQ(started.exit_code, 1) << started.stdout_text;

  for (const std::string extra : {"attack = \"sign-flip\"\n", "[attack]\nkind = \"gaussian\"\n"}) {
    const std::string config = WriteConfig(scratch, extra);
    CommandOutput flag =
        RunCommand(absl::StrCat(Binary("fedmi-client"), " --config ", config, " 2>&1"));
    EXPECT_EQ(flag.exit_code, 2) << extra << flag.stdout_text;
    EXPECT_THAT(flag.stdout_text, HasSubstr(config)) << extra;
    EXPECT_THAT(flag.stdout_text, HasSubstr("'attack")) << extra;
    EXPECT_THAT(flag.stdout_text, HasSubstr("simulation-only")) << extra;
    // Named by the environment instead.
    CommandOutput env =
        RunCommand(absl::StrCat("FEDMI_CONFIG=", config, " ", Binary("fedmi-client"), " 2>&1"));
    EXPECT_EQ(env.exit_code, 2) << extra << env.stdout_text;
    EXPECT_THAT(env.stdout_text, HasSubstr("simulation-only")) << extra;
  }
}

TEST(AttackTest, TheSimulatedSiteTakesOnlyTheModelPoisoningKinds) {
  const std::string site = absl::StrCat(Binary("fedmi-sim-site"),
                                        " --site site-1 --insecure --coordinator 127.0.0.1:1"
                                        " --give-up-after 1");
  for (const std::string kind : {"label-flip", "bogus"}) {
    CommandOutput out = RunCommand(absl::StrCat(site, " --attack ", kind, " 2>&1"));
    EXPECT_EQ(out.exit_code, 2) << kind << ": " << out.stdout_text;
    EXPECT_THAT(out.stdout_text, HasSubstr("--attack")) << kind;
  }
  CommandOutput missing = RunCommand(absl::StrCat(site, " 2>&1"));
  EXPECT_EQ(missing.exit_code, 2) << missing.stdout_text;
  // A known kind starts the daemon, which gives up on the coordinator.
  CommandOutput scaled = RunCommand(absl::StrCat(site, " --attack scaled 2>&1"));
  EXPECT_EQ(scaled.exit_code, 1) << scaled.stdout_text;
  EXPECT_THAT(scaled.stdout_text, HasSubstr("SIMULATED ATTACK"));
}

TEST(AttackTest, SimRefusesAnUnknownSiteOrKind) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  const std::string sim = absl::StrCat(Binary("fedmi"), " sim --sites 3 --rounds 1 --data ", data,
                                       " --work-dir ", scratch.path(), "/sim");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"site-4:scaled", "no site 'site-4'"},
      {"site-1:bogus", "unknown kind 'bogus'"},
      {"site-1", "expected SITE:KIND"},
  };
  for (const auto& [value, message] : cases) {
    CommandOutput out = RunCommand(absl::StrCat(sim, " --attack ", value, " 2>&1"));
    EXPECT_EQ(out.exit_code, 2) << value << ": " << out.stdout_text;
    EXPECT_THAT(out.stdout_text, HasSubstr(message)) << value;
  }
}

TEST(AttackTest, SimRunsAttackingSitesAndReportsThem) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  const std::string work = scratch.path() + "/sim";
  CommandOutput out = RunCommand(absl::StrCat(
      Binary("fedmi"), " sim --sites 3 --rounds 1 --seed 3 --data ", data, " --work-dir ", work,
      " --attack site-1:sign-flip --attack 2:label-flip --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  EXPECT_THAT(out.stdout_text,
              HasSubstr("SIMULATED ATTACK: site-1 (sign-flip) sends w_global - d"));
  EXPECT_THAT(out.stdout_text,
              HasSubstr("SIMULATED ATTACK: site-2 (label-flip) trains on flipped"));
  nlohmann::json summary = nlohmann::json::parse(LastLine(out.stdout_text));
  EXPECT_EQ(summary["attacks"], nlohmann::json::parse(R"([{"site": "site-1", "kind": "sign-flip"},
                                      {"site": "site-2", "kind": "label-flip"}])"));
  // Only site-1 ran the simulated daemon; site-2 and site-3 ran fedmi-client.
  auto log_of = [&](const std::string& site) {
    std::ifstream in(absl::StrCat(work, "/logs/", site, ".log"));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_THAT(log_of("site-1"), HasSubstr("SIMULATED ATTACK"));
  EXPECT_THAT(log_of("site-2"), ::testing::Not(HasSubstr("SIMULATED ATTACK")));
  EXPECT_THAT(log_of("site-3"), ::testing::Not(HasSubstr("SIMULATED ATTACK")));
}

}  // namespace
}  // namespace fedmi
