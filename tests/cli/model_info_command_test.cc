// `fedmi model info` on every kind of model file (cli/model_info_command.cc),
// with the real TorchModelRunner: one round's card reads the same from each
// format, and what is not a fedmi model file is refused by name.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/model_files.h"
#include "common/base/env.h"
#include "common/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/cli/model_card_fixture.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

void AddModelCommandsWithTorch(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddModelCommands(app, global, result, std::make_shared<TorchModelRunner>());
}

CliOutcome Info(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"info"};
  full.insert(full.end(), args.begin(), args.end());
  return RunCliCommands(&AddModelCommandsWithTorch, "model", full);
}

class ModelInfoCommandTest : public ::testing::Test {
 protected:
  // Round 2 of FinishedRun() as `name`, the weights of a seeded cnn.
  std::string Export(const std::string& name) {
    auto model = ml::LocalModel::Create(ml::ModelConfig());
    EXPECT_THAT(model, IsOk());
    auto weights = (*model)->ExportWeights();
    EXPECT_THAT(weights, IsOk());
    auto format = ResolveExportFormat(name, "", "");
    EXPECT_THAT(format, IsOk());
    format->class_names = {"normal", "pneumonia"};
    const std::string path = dir_.Join(name);
    EXPECT_THAT(WriteRunModelFile(FinishedRun(), 2, *weights, path, *format, &runner_, nullptr),
                IsOk());
    return path;
  }

  // A copy of `path` cut to half its size.
  std::string Truncated(const std::string& path, const std::string& name) {
    auto bytes = ReadFileToString(path);
    EXPECT_THAT(bytes, IsOk());
    const std::string out = dir_.Join(name);
    EXPECT_THAT(WriteFileAtomically(*Env::Default(), out, bytes->substr(0, bytes->size() / 2)),
                IsOk());
    return out;
  }

  std::string RandomFile(const std::string& name) {
    std::string bytes;
    uint32_t state = 12345;
    for (int i = 0; i < 4096; ++i) {
      state = state * 1664525u + 1013904223u;
      bytes.push_back(static_cast<char>(state >> 24));
    }
    const std::string out = dir_.Join(name);
    EXPECT_THAT(WriteFileAtomically(*Env::Default(), out, bytes), IsOk());
    return out;
  }

  ScratchDir dir_;
  TorchModelRunner runner_;
};

TEST_F(ModelInfoCommandTest, EveryFormatOfOneRoundPrintsTheSameCard) {
  const CliOutcome pt = Info({Export("m.pt"), "--json"});
  ASSERT_EQ(pt.exit_code, 0) << pt.err;
  const nlohmann::json card = pt.Json();
  ASSERT_TRUE(card.is_object()) << pt.out;
  EXPECT_EQ(card["run"]["round"], 2);
  EXPECT_EQ(card["class_names"], nlohmann::json({"normal", "pneumonia"}));
  for (const char* name : {"m.safetensors", "m.ptl"}) {
    const CliOutcome other = Info({Export(name), "--json"});
    ASSERT_EQ(other.exit_code, 0) << other.err;
    EXPECT_EQ(other.Json(), card) << name << ":\n" << other.out << "\n.pt:\n" << pt.out;
  }
}

TEST_F(ModelInfoCommandTest, PrintsTheCardForAPerson) {
  const std::string path = Export("m.safetensors");
  const CliOutcome outcome = Info({path});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_THAT(outcome.out, HasSubstr(path + "\n"));
  EXPECT_THAT(outcome.out, HasSubstr("classes                2: normal, pneumonia\n"));
  EXPECT_THAT(outcome.out, HasSubstr("normalization          (pixel / 255 - 0.5) / 0.5\n"));
  EXPECT_THAT(outcome.out, HasSubstr("sites                  3\n"));
}

TEST_F(ModelInfoCommandTest, RefusesTruncatedAndRandomFilesByName) {
  const std::vector<std::string> broken = {
      Truncated(Export("m.pt"), "cut.pt"),   Truncated(Export("m.safetensors"), "cut.safetensors"),
      Truncated(Export("m.ptl"), "cut.ptl"), RandomFile("noise.pt"),
      RandomFile("noise.safetensors"),       RandomFile("noise.ptl")};
  for (const std::string& path : broken) {
    const CliOutcome outcome = Info({path, "--json"});
    EXPECT_EQ(outcome.exit_code, 1) << path << ": " << outcome.out;
    EXPECT_THAT(outcome.err, HasSubstr(path)) << "the refusal names the file";
    EXPECT_FALSE(outcome.Json().is_object()) << path << " printed a card";
  }
}

TEST_F(ModelInfoCommandTest, RefusesAModelFileFedmiDidNotWrite) {
  // Valid safetensors, as another tool writes them: weights, no fedmi metadata.
  const std::string path = dir_.Join("other.safetensors");
  ASSERT_THAT(WriteSafetensors(path, FloatBundle({{"w", DType::kFloat32, {1}}}, {1.0f}),
                               {{"format", "pt"}}),
              IsOk());
  const CliOutcome outcome = Info({path});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.err, HasSubstr(path + " is not a fedmi model"));
}

TEST_F(ModelInfoCommandTest, RefusesMissingFilesAndOtherExtensions) {
  const std::string missing = dir_.Join("none.pt");
  CliOutcome outcome = Info({missing});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.err, HasSubstr("model file " + missing + " does not exist"));
  outcome = Info({dir_.Join("m.onnx")});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("must end in .pt"));
}

}  // namespace
}  // namespace fedmi::cli
