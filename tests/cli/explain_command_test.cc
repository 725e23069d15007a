// `fedmi explain` with the real TorchModelRunner on tiny models: the files
// it writes, its JSON, and its refusals (unknown layer, index, no runner).
#include <torch/script.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "cli/model_files.h"
#include "common/base/env.h"
#include "common/data/npz.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kImages = 6;

void AddExplainWithTorch(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddExplainCommand(app, global, result, std::make_shared<TorchModelRunner>());
}

void AddExplainWithoutTraining(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddExplainCommand(app, global, result, nullptr);
}

class ExplainCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ml::ModelConfig config;
    config.seed = 4;
    auto model = ml::LocalModel::Create(config);
    ASSERT_THAT(model, IsOk());
    ASSERT_THAT((*model)->SaveTorchScript(model_), IsOk());
    images_.height = images_.width = 28;
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> pixel(0, 255);
    NpyArray pixels{"|u1", {kImages, 28, 28}, {}};
    NpyArray labels{"|u1", {kImages, 1}, {}};
    for (int i = 0; i < kImages; ++i) {
      for (int p = 0; p < 28 * 28; ++p) {
        images_.pixels.push_back(static_cast<uint8_t>(pixel(rng)));
        pixels.data.push_back(static_cast<char>(images_.pixels.back()));
      }
      images_.labels.push_back(i % 2);
      labels.data.push_back(static_cast<char>(i % 2));
    }
    ASSERT_THAT(WriteNpz(data_, {{"test_images", pixels}, {"test_labels", labels}}), IsOk());
    auto predictions = (*model)->Predict(images_);
    ASSERT_THAT(predictions, IsOk());
    prob_ = predictions->prob_positive;
  }

  CliOutcome Run(std::vector<std::string> args) {
    return RunCliCommands(&AddExplainWithTorch, "explain", std::move(args));
  }

  ScratchDir dir_;
  std::string model_ = dir_.Join("model.pt");
  std::string data_ = dir_.Join("data.npz");
  std::string out_ = dir_.Join("out");
  ImageSet images_;
  std::vector<float> prob_;
};

TEST_F(ExplainCommandTest, WritesOverlaysContactSheetAndCsv) {
  const CliOutcome outcome =
      Run({"--model", model_, "--data", data_, "--indices", "5,2", "--out", out_, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.err, HasSubstr("explained 2/2 images"));
  const nlohmann::json json = outcome.Json();
  ASSERT_TRUE(json.is_object()) << outcome.out;
  EXPECT_EQ(json["count"], 2);
  EXPECT_EQ(json["layer"], "block2");  // the last block of at least 7 x 7 at 28 x 28
  EXPECT_EQ(json["method"], "gradcam");
  EXPECT_EQ(json["overlays"],
            (std::vector<std::string>{out_ + "/overlay_0005.png", out_ + "/overlay_0002.png"}));
  EXPECT_EQ(json["contact_sheet"], out_ + "/contact_sheet.png");
  for (const std::string path : {out_ + "/overlay_0005.png", out_ + "/contact_sheet.png"}) {
    absl::StatusOr<std::string> png = ReadFileToString(path);
    ASSERT_THAT(png, IsOk());
    EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << path;
  }

  absl::StatusOr<std::string> csv = ReadFileToString(json["csv"].get<std::string>());
  ASSERT_THAT(csv, IsOk());
  const std::vector<std::string> lines = absl::StrSplit(*csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << *csv;
  EXPECT_EQ(lines[0], "index,label,prob,peak_row,peak_col,peak_value,map");
  for (int line = 1; line <= 2; ++line) {
    const std::vector<std::string> fields = absl::StrSplit(lines[line], ',');
    ASSERT_EQ(fields.size(), 7u);
    const int index = std::stoi(fields[0]);
    EXPECT_EQ(index, line == 1 ? 5 : 2);
    EXPECT_EQ(std::stoi(fields[1]), index % 2);
    // The probability is the model's own P(class 1) for that image.
    EXPECT_NEAR(std::stod(fields[2]), prob_[index], 1e-5);
    // An untrained model's map can be empty for a noise image: then there is
    // no peak to report.
    if (fields[6] == "empty") {
      EXPECT_EQ(fields[3] + fields[4] + fields[5], "") << lines[line];
      continue;
    }
    EXPECT_EQ(fields[6], "peak");
    EXPECT_GE(std::stoi(fields[3]), 0);
    EXPECT_LT(std::stoi(fields[3]), 28);
    EXPECT_LT(std::stoi(fields[4]), 28);
    EXPECT_GT(std::stod(fields[5]), 0);
  }
}

TEST_F(ExplainCommandTest, TextNamesMethodAndLayer) {
  const CliOutcome outcome = Run({"--model", model_, "--data", data_, "--limit", "3", "--out", out_,
                                  "--method", "gradcam++", "--layer", "block2"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("gradcam++ at layer block2 for 3 images"));
  EXPECT_TRUE(Env::Default()->FileExists(out_ + "/overlay_0002.png"));
  EXPECT_FALSE(Env::Default()->FileExists(out_ + "/overlay_0003.png"));
}

TEST_F(ExplainCommandTest, RefusesUnknownLayersAndIndices) {
  CliOutcome outcome =
      Run({"--model", model_, "--data", data_, "--out", out_, "--layer", "layer4"});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, AllOf(HasSubstr("'layer4'"), HasSubstr("block1, block2, block3")));
  outcome = Run({"--model", model_, "--data", data_, "--out", out_, "--indices", "6"});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, HasSubstr("index 6 is outside the test split's 6 images"));
  outcome =
      Run({"--model", model_, "--data", data_, "--out", out_, "--indices", "1", "--limit", "2"});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
}

TEST_F(ExplainCommandTest, UserModuleNeedsALayer) {
  torch::manual_seed(1);
  torch::jit::Module conv("CliUserConv");
  conv.register_parameter("weight", torch::randn({3, 1, 3, 3}), false);
  conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
  torch::jit::Module net("CliUserNet");
  net.register_module("features", conv);
  net.register_parameter("fc", torch::randn({2, 3}), false);
  net.define(
      "def forward(self, x):\n"
      "    return torch.linear(torch.mean(self.features.forward(x), [2, 3]), self.fc)\n");
  const std::string path = dir_.Join("user.pt");
  net.save(path);
  CliOutcome outcome = Run({"--model", path, "--data", data_, "--out", out_});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, HasSubstr("give a layer, one of its submodules: features"));
  outcome = Run({"--model", path, "--data", data_, "--out", out_, "--layer", "features", "--limit",
                 "2", "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.Json()["layer"], "features");
  EXPECT_EQ(outcome.Json()["count"], 2);
}

// A module whose class-1 evidence at `features` is empty: features is a
// ReLU (>= 0) and class 1's logit weighs every channel negatively, so each
// Grad-CAM weight is negative and the map's positive part is 0 everywhere.
// The CSV must not report a peak at (0, 0) for it, nor the overlay draw one.
TEST_F(ExplainCommandTest, MapWithoutEvidenceHasNoPeak) {
  torch::manual_seed(2);
  torch::jit::Module conv("CliReluConv");
  conv.register_parameter("weight", torch::randn({3, 1, 3, 3}), false);
  conv.define("def forward(self, x):\n    return torch.relu(torch.conv2d(x, self.weight))\n");
  torch::jit::Module net("CliNegativeNet");
  net.register_module("features", conv);
  net.register_parameter("fc", torch::stack({torch::ones({3}), -torch::ones({3})}), false);
  net.define(
      "def forward(self, x):\n"
      "    return torch.linear(torch.mean(self.features.forward(x), [2, 3]), self.fc)\n");
  const std::string path = dir_.Join("negative.pt");
  net.save(path);
  CliOutcome outcome = Run({"--model", path, "--data", data_, "--out", out_, "--layer", "features",
                            "--limit", "2", "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.Json()["empty_maps"], 2);
  EXPECT_EQ(outcome.Json()["non_finite_maps"], 0);
  absl::StatusOr<std::string> csv = ReadFileToString(out_ + "/explanations.csv");
  ASSERT_THAT(csv, IsOk());
  std::vector<std::string> lines = absl::StrSplit(*csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << *csv;
  for (int line = 1; line <= 2; ++line) {
    const std::vector<std::string> fields = absl::StrSplit(lines[line], ',');
    ASSERT_EQ(fields.size(), 7u) << lines[line];
    EXPECT_EQ(fields[0], std::to_string(line - 1));
    EXPECT_EQ(fields[3] + fields[4] + fields[5], "") << lines[line];
    EXPECT_EQ(fields[6], "empty");
  }
  EXPECT_TRUE(Env::Default()->FileExists(out_ + "/contact_sheet.png"));

  // The text says so; class 0 (weights +1) has evidence and peaks.
  outcome =
      Run({"--model", path, "--data", data_, "--out", out_, "--layer", "features", "--limit", "2"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr("2 of 2 maps are 0 everywhere: no evidence for the class at "
                                     "layer features"));
  outcome = Run({"--model", path, "--data", data_, "--out", out_, "--layer", "features", "--limit",
                 "2", "--class", "0", "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.Json()["empty_maps"], 0);
  csv = ReadFileToString(out_ + "/explanations.csv");
  ASSERT_THAT(csv, IsOk());
  lines = absl::StrSplit(*csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << *csv;
  EXPECT_THAT(lines[1], ::testing::EndsWith(",peak"));
}

TEST(ExplainWithoutTrainingTest, Refuses) {
  const CliOutcome outcome = RunCliCommands(&AddExplainWithoutTraining, "explain",
                                            {"--model", "m.pt", "--data", "d.npz", "--out", "o"});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, HasSubstr("`fedmi explain` runs models"));
}

}  // namespace
}  // namespace fedmi::cli
