// `fedmi data split` with the simulation flags: --labelled-fraction moves
// most training images to each shard's unlabelled pool and writes their
// labels aside; --flip-labels relabels a share of one site's images; both
// are checked before anything is written.
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

// 60 training and 20 validation images of 4x4, image i filled with i,
// labels alternating.
std::string WriteTinyNpz(const ScratchDir& dir) {
  std::map<std::string, NpyArray> arrays;
  for (auto [split, rows] : {std::pair<std::string, int>{"train", 60}, {"val", 20}}) {
    NpyArray images{"|u1", {rows, 4, 4}, {}};
    NpyArray labels{"|u1", {rows, 1}, {}};
    for (int i = 0; i < rows; ++i) {
      images.data.insert(images.data.end(), 16, static_cast<char>(i));
      labels.data.push_back(static_cast<char>(i % 2));
    }
    arrays[split + "_images"] = images;
    arrays[split + "_labels"] = labels;
  }
  const std::string path = dir.Join("tiny.npz");
  EXPECT_THAT(WriteNpz(path, arrays), IsOk());
  return path;
}

TEST(DataSplitTest, LabelledFractionFillsEachShardsPoolAndKeepsTheTruthAside) {
  ScratchDir dir;
  const std::string out = dir.Join("shards");
  CliOutcome outcome = RunCliCommands(
      AddDataCommands, "data",
      {"split", "--input", WriteTinyNpz(dir), "--sites", "2", "--partition", "iid",
       "--labelled-fraction", "0.25", "--flip-labels", "site-2:0.5", "--out", out, "--json"});
  ASSERT_EQ(outcome.exit_code, kExitOk) << outcome.err;
  const nlohmann::json json = outcome.Json();
  for (int site = 1; site <= 2; ++site) {
    const nlohmann::json& report = json["sites"][site - 1];
    ASSERT_OK_AND_ASSIGN(SiteDataset data,
                         LoadSiteDataset(absl::StrCat(out, "/site-", site, ".npz")));
    EXPECT_EQ(report["unlabelled"], data.unlabelled.images.size());
    EXPECT_EQ(report["train_examples"], data.train.size());
    EXPECT_EQ(data.train.size() + data.unlabelled.images.size(), 30);
    EXPECT_EQ(report["train_class_counts"].size(), 2u);
    EXPECT_TRUE(std::filesystem::exists(absl::StrCat(out, "/site-", site, ".truth.csv")));
  }
  // Half of site-2's labelled images carry the other class now; image i
  // was filled with i and labelled i % 2.
  SiteDataOptions at_4x4;
  at_4x4.height = at_4x4.width = 4;
  ASSERT_OK_AND_ASSIGN(SiteDataset noisy, LoadSiteDataset(out + "/site-2.npz", at_4x4));
  int wrong = 0;
  for (int64_t row = 0; row < noisy.train.size(); ++row) {
    wrong += noisy.train.labels[row] != noisy.train.pixels[row * noisy.train.ImageBytes()] % 2;
  }
  EXPECT_EQ(wrong, (noisy.train.size() + 1) / 2);
  EXPECT_TRUE(std::filesystem::exists(out + "/site-2.flipped.csv"));
  EXPECT_FALSE(std::filesystem::exists(out + "/site-1.flipped.csv"));
}

TEST(DataSplitTest, SimulationFlagsAreCheckedBeforeAnythingIsWritten) {
  ScratchDir dir;
  const std::string input = WriteTinyNpz(dir);
  const std::string out = dir.Join("shards");
  CliOutcome outcome = RunCliCommands(
      AddDataCommands, "data",
      {"split", "--input", input, "--sites", "2", "--flip-labels", "site-3:0.1", "--out", out});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("site-1 to site-2"));
  outcome = RunCliCommands(
      AddDataCommands, "data",
      {"split", "--input", input, "--sites", "2", "--flip-labels", "site-1:1.5", "--out", out});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  outcome = RunCliCommands(
      AddDataCommands, "data",
      {"split", "--input", input, "--sites", "2", "--labelled-fraction", "0", "--out", out});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("a site needs a labelled image"));
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace fedmi::cli
