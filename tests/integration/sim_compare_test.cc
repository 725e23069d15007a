// `fedmi sim --compare` end to end: two strategies, each a real `fedmi sim`
// federation of coordinator and site processes, on one split and seed.
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(SimCompareTest, TwoStrategiesOnTheSameSplitGiveATableJsonAndChart) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  std::ofstream(scratch.Join("strategies.toml")) << R"([[strategy]]
name = "FedAvg"
flags = "--strategy fedavg"

[[strategy]]
name = "Median"
flags = ["--strategy", "median"]
)";
  const std::string work = scratch.Join("work");
  CommandOutput out =
      RunCommand(absl::StrCat(Binary("fedmi"), " sim --compare ", scratch.Join("strategies.toml"),
                              " --sites 2 --rounds 2 --seeds 3 --target-auc 0.5 --data ", data,
                              " --work-dir ", work, " --out ", scratch.Join("out"), " --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  EXPECT_THAT(out.stdout_text, HasSubstr("[1/2] FedAvg, seed 3"));
  EXPECT_THAT(out.stdout_text, HasSubstr("[2/2] Median, seed 3"));
  EXPECT_THAT(out.stdout_text, HasSubstr("round 2/2: validation AUC"));
  EXPECT_THAT(out.stdout_text, HasSubstr("rounds to AUC 0.5"));

  const nlohmann::json summary = nlohmann::json::parse(LastLine(out.stdout_text));
  ASSERT_EQ(summary["strategies"].size(), 2u);
  EXPECT_EQ(summary["sites"], 2);
  EXPECT_EQ(summary["seeds"], nlohmann::json({3}));
  for (const nlohmann::json& strategy : summary["strategies"]) {
    ASSERT_EQ(strategy["runs"].size(), 1u) << strategy["name"];
    const nlohmann::json& run = strategy["runs"][0];
    ASSERT_EQ(run["auc_per_round"].size(), 2u) << strategy["name"];
    // The last round's model is sim's final model: the same test AUC.
    EXPECT_NEAR(run["auc_per_round"][1].get<double>(), run["test_auc"].get<double>(), 1e-6);
    // Both classes are easy to tell apart: every round beats chance.
    EXPECT_EQ(run["rounds_to_target"], 1) << strategy["name"];
    EXPECT_GT(run["uploaded_bytes"].get<int64_t>(), 0);
    EXPECT_GT(run["run_seconds"].get<double>(), 0);
  }
  EXPECT_EQ(summary["strategies"][1]["flags"], nlohmann::json({"--strategy", "median"}));

  // Every strategy trained on the same shards (the same arrays: the zip
  // files differ in their members' times).
  for (const char* shard : {"site-1.npz", "site-2.npz"}) {
    absl::StatusOr<std::map<std::string, NpyArray>> fedavg =
        ReadNpz(absl::StrCat(work, "/01-fedavg-seed3/shards/", shard));
    absl::StatusOr<std::map<std::string, NpyArray>> median =
        ReadNpz(absl::StrCat(work, "/02-median-seed3/shards/", shard));
    ASSERT_TRUE(fedavg.ok() && median.ok()) << shard;
    ASSERT_EQ(fedavg->size(), median->size()) << shard;
    for (const auto& [name, array] : *fedavg) {
      ASSERT_EQ(median->count(name), 1u) << shard << " " << name;
      const NpyArray& other = median->at(name);
      EXPECT_TRUE(array.shape == other.shape && array.data == other.data) << shard << " " << name;
    }
  }

  std::ifstream written(scratch.Join("out/compare.json"));
  EXPECT_EQ(nlohmann::json::parse(written)["strategies"], summary["strategies"]);
  absl::StatusOr<std::string> png = ReadFileToString(scratch.Join("out/compare.png"));
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->substr(1, 3), "PNG");
}

TEST(SimCompareTest, BadStrategiesFilesAreUsageErrorsBeforeAnyRun) {
  ScratchDir scratch;
  auto compare = [&](const std::string& toml, const std::string& flags = "") {
    std::ofstream(scratch.Join("s.toml")) << toml;
    return RunCommand(absl::StrCat(Binary("fedmi"), " sim --compare ", scratch.Join("s.toml"),
                                   " --data ", scratch.Join("none.npz"), flags, " 2>&1"));
  };
  CommandOutput fixed = compare("[[strategy]]\nname = \"a\"\nflags = \"--sites 5\"\n");
  EXPECT_EQ(fixed.exit_code, 2);
  EXPECT_THAT(fixed.stdout_text, HasSubstr("--sites cannot differ between strategies"));

  // Sim's own parser checks an entry's flags, with sim's messages.
  CommandOutput unknown_value = compare("[[strategy]]\nname = \"a\"\nflags = \"--strategy x\"\n");
  EXPECT_EQ(unknown_value.exit_code, 2);
  EXPECT_THAT(unknown_value.stdout_text, HasSubstr("s.toml:1: strategy 'a': --strategy"));
  CommandOutput unknown_flag = compare("[[strategy]]\nname = \"a\"\nflags = \"--no-such\"\n");
  EXPECT_EQ(unknown_flag.exit_code, 2);
  EXPECT_THAT(unknown_flag.stdout_text, HasSubstr("--no-such"));
  // And so does sim's spec: --dp needs a budget.
  CommandOutput spec = compare("[[strategy]]\nname = \"a\"\nflags = \"--dp site\"\n");
  EXPECT_EQ(spec.exit_code, 2);
  EXPECT_THAT(spec.stdout_text, HasSubstr("strategy 'a': --dp site needs --target-epsilon"));

  EXPECT_EQ(compare("").exit_code, 2);
  EXPECT_EQ(compare("[[strategy]]\nname = \"a\"\n", " --seeds 1,x").exit_code, 2);
  CommandOutput missing = RunCommand(
      absl::StrCat(Binary("fedmi"), " sim --compare ", scratch.Join("nope.toml"), " 2>&1"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.stdout_text, HasSubstr("nope.toml"));
  CommandOutput without =
      RunCommand(absl::StrCat(Binary("fedmi"), " sim --seeds 0,1 --data none.npz 2>&1"));
  EXPECT_EQ(without.exit_code, 2);
  EXPECT_THAT(without.stdout_text, HasSubstr("--seeds needs --compare FILE"));
}

}  // namespace
}  // namespace fedmi
