// An exported model loaded back with plain LibTorch, as a user's program
// (or Python's torch.jit.load) loads it: its predict_proba on raw pixel
// values gives what `fedmi model predict` writes, and its model card says
// what the run says (docs/models.md).
#include <torch/script.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "cli/model_files.h"
#include "common/base/env.h"
#include "common/crypto/sha256.h"
#include "common/data/npz.h"
#include "common/runspec/model_file_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/cli/model_card_fixture.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr int kImages = 12;
constexpr int kSide = 28;

void AddModelCommandsWithTorch(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddModelCommands(app, global, result, std::make_shared<TorchModelRunner>());
}

class ExportedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Smooth random images, so the model's probabilities spread out.
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> pixel(0, 255);
    NpyArray pixels{"|u1", {kImages, kSide, kSide}, {}};
    NpyArray labels{"|u1", {kImages, 1}, {}};
    for (int i = 0; i < kImages; ++i) {
      const int base = pixel(rng);
      for (int p = 0; p < kSide * kSide; ++p) {
        raw_.push_back(static_cast<uint8_t>((base + pixel(rng) / 4) % 256));
        pixels.data.push_back(static_cast<char>(raw_.back()));
      }
      labels.data.push_back(static_cast<char>(i % 2));
    }
    ASSERT_THAT(WriteNpz(data_, {{"test_images", pixels}, {"test_labels", labels}}), IsOk());
  }

  // Round 2 of FinishedRun() with the weights of a cnn of `channels`
  // channels, exported as `name` (.pt, .ptl or .safetensors).
  std::string Export(const std::string& name, int64_t channels = 1) {
    ml::ModelConfig config;
    config.seed = 5;
    config.channels = channels;
    auto model = ml::LocalModel::Create(config);
    EXPECT_THAT(model, IsOk());
    auto weights = (*model)->ExportWeights();
    EXPECT_THAT(weights, IsOk());
    v1::RunStatus run = FinishedRun();
    run.mutable_spec()->set_channels(static_cast<int32_t>(channels));
    run.mutable_spec()->set_seed(config.seed);
    auto format = ResolveExportFormat(name, "", "");
    EXPECT_THAT(format, IsOk());
    format->class_names = {"normal", "pneumonia"};
    const std::string path = dir_.Join(name);
    EXPECT_THAT(WriteRunModelFile(run, 2, *weights, path, *format, &runner_, nullptr), IsOk());
    return path;
  }

  // P(class 1) per image from `fedmi model predict`'s CSV.
  std::vector<double> PredictedByFedmi(const std::string& model) {
    const std::string csv = dir_.Join("predictions.csv");
    CliOutcome outcome =
        RunCliCommands(&AddModelCommandsWithTorch, "model",
                       {"predict", "--model", model, "--data", data_, "--out", csv});
    EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
    auto text = ReadFileToString(csv);
    EXPECT_THAT(text, IsOk());
    std::vector<double> probabilities;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      std::vector<std::string> fields = absl::StrSplit(line, ',');
      if (fields[0] == "index") continue;
      probabilities.push_back(std::stod(fields[2]));
    }
    return probabilities;
  }

  torch::Tensor RawImages() {
    return torch::from_blob(raw_.data(), {kImages, kSide, kSide}, torch::kUInt8).clone();
  }

  ScratchDir dir_;
  const std::string data_ = dir_.Join("test.npz");
  std::vector<uint8_t> raw_;
  TorchModelRunner runner_;
};

TEST_F(ExportedModelTest, PredictProbaOnRawPixelsGivesWhatFedmiModelPredictWrites) {
  const std::string path = Export("model.pt");
  const std::vector<double> by_fedmi = PredictedByFedmi(path);
  ASSERT_EQ(by_fedmi.size(), static_cast<size_t>(kImages));

  torch::jit::Module module = torch::jit::load(path);
  const torch::Tensor proba = module.run_method(kPredictProbaMethod, RawImages()).toTensor();
  ASSERT_EQ(proba.sizes(), (std::vector<int64_t>{kImages, 2}));
  double spread = 0;
  for (int i = 0; i < kImages; ++i) {
    // The CSV holds 6 decimals: at most 5e-7 off the float it printed.
    EXPECT_NEAR(proba[i][1].item<double>(), by_fedmi[i], 1e-6) << "image " << i;
    EXPECT_NEAR(proba[i].sum().item<double>(), 1.0, 1e-6);
    spread = std::max(spread, std::abs(by_fedmi[i] - by_fedmi[0]));
  }
  EXPECT_GT(spread, 1e-3) << "images this alike test nothing";

  // The runner's own floats, exactly as training's input pipeline makes them.
  auto split = runner_.PredictSplit(path, data_, "test");
  ASSERT_THAT(split, IsOk());
  for (int i = 0; i < kImages; ++i) {
    EXPECT_NEAR(proba[i][1].item<float>(), split->prob_positive[i], 1e-6) << "image " << i;
  }
  // Float pixel values, N x 1 x H x W, are the same input.
  const torch::Tensor as_float = RawImages().to(torch::kFloat32).unsqueeze(1);
  EXPECT_TRUE(torch::equal(module.run_method(kPredictProbaMethod, as_float).toTensor(), proba));
  // forward keeps its contract: normalized input, logits out.
  const torch::Tensor logits =
      module.forward({module.run_method(kPreprocessMethod, RawImages()).toTensor()}).toTensor();
  EXPECT_TRUE(torch::allclose(torch::softmax(logits, 1), proba));
}

TEST_F(ExportedModelTest, TheCardInTheArchiveSaysWhatTheRunSays) {
  const std::string path = Export("model.pt");
  torch::jit::ExtraFilesMap extra = {{kModelCardFile, ""}};
  torch::jit::Module module = torch::jit::load(path, torch::kCPU, extra);
  const json card = json::parse(extra[kModelCardFile]);
  const v1::RunStatus run = FinishedRun();
  EXPECT_EQ(card["format"], kModelCardFormat);
  EXPECT_EQ(card["architecture"], run.spec().model());
  EXPECT_EQ(card["class_names"], json({"normal", "pneumonia"}));
  EXPECT_EQ(card["run"]["id"], run.run_id());
  EXPECT_EQ(card["run"]["round"], 2);
  EXPECT_EQ(card["run"]["spec_sha256"], HexEncode(run.spec_sha256()));
  EXPECT_EQ(card["run"]["strategy"], run.spec().strategy());
  EXPECT_EQ(card["run"]["sites"], 3);
  EXPECT_EQ(card["run"]["secure_aggregation"], true);
  EXPECT_EQ(card["validation"]["auc"], run.rounds(1).eval_metrics().auc());
  EXPECT_EQ(card["operating_threshold"]["threshold"],
            run.rounds(1).eval_metrics().operating_threshold());
  EXPECT_EQ(card["normalization"]["scale"], kPixelScale);
  // The flat entries stay attributes, as before cards.
  EXPECT_EQ(module.attr("fedmi_operating_threshold").toStringRef(), "0.62");
  EXPECT_FALSE(module.hasattr("fedmi_model_card")) << "the card is the extra file";
}

TEST_F(ExportedModelTest, AColourModelTakesGreyImagesAndRefusesOtherSizes) {
  const std::string path = Export("colour.pt", /*channels=*/3);
  torch::jit::Module module = torch::jit::load(path);
  const torch::Tensor grey = RawImages();
  const torch::Tensor rgb = grey.unsqueeze(1).expand({-1, 3, -1, -1}).contiguous();
  const torch::Tensor from_grey = module.run_method(kPredictProbaMethod, grey).toTensor();
  EXPECT_TRUE(torch::equal(from_grey, module.run_method(kPredictProbaMethod, rgb).toTensor()));
  try {
    module.run_method(kPreprocessMethod, torch::zeros({2, 3, 32, 32}));
    ADD_FAILURE() << "a 32 x 32 image was taken";
  } catch (const std::exception& e) {  // torch::jit::JITException
    EXPECT_THAT(e.what(), HasSubstr("this model takes 3 x 28 x 28 images"));
  }
  try {
    module.run_method(kPreprocessMethod, torch::zeros({28, 28}));
    ADD_FAILURE() << "a batch without its N was taken";
  } catch (const std::exception& e) {  // torch::jit::JITException
    EXPECT_THAT(e.what(), HasSubstr("N x H x W or N x C x H x W"));
  }
}

TEST_F(ExportedModelTest, ALoadedModelSavedAgainKeepsItsMethodsAndCard) {
  const std::string path = Export("model.pt");
  auto loaded = ml::LocalModel::LoadTorchScript(path);
  ASSERT_THAT(loaded, IsOk());
  auto metadata = (*loaded)->Metadata();
  ASSERT_THAT(metadata, IsOk());
  ASSERT_EQ(metadata->count(kModelCardMetadataKey), 1u);
  const std::string again = dir_.Join("again.pt");
  ASSERT_THAT((*loaded)->SaveTorchScript(again, *metadata), IsOk());
  torch::jit::ExtraFilesMap extra = {{kModelCardFile, ""}};
  torch::jit::Module module = torch::jit::load(again, torch::kCPU, extra);
  EXPECT_EQ(extra[kModelCardFile], metadata->at(kModelCardMetadataKey));
  EXPECT_TRUE(module.find_method(kPredictProbaMethod).has_value());
}

}  // namespace
}  // namespace fedmi::cli
