// `fedmi al rank`, `fedmi al import` and `fedmi data audit-labels` with a
// real model on squares (tests/client/ml/squares.h): the list a radiologist
// fills in, its contact sheet, the labels going into the site's data, and
// planted label noise found by the audit.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/model_files.h"
#include "cli/scarce_labels.h"
#include "common/base/csv.h"
#include "common/base/env.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"
#include "common/data/unlabelled_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/client/ml/squares.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

void AddCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  AddDataCommands(app, global, result);
  AddScarceLabelCommands(app, global, result);
}

std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(CsvFields(line));
  }
  return rows;
}

class ActiveLearningCommandsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = ml::LocalModel::Create(ml::ModelConfig{});
    ASSERT_THAT(model, IsOk());
    ml::TrainOptions train;
    train.epochs = 3;
    train.seed = 1;
    ASSERT_THAT((*model)->Train(ml::MakeSquares(200, 28, 1), train), IsOk());
    model_ = std::move(*model).release();
  }
  static void TearDownTestSuite() { delete model_; }

  void SetUp() override {
    ASSERT_THAT(model_->SaveTorchScript(model_path_), IsOk());
    const ImageSet train = ml::MakeSquares(20, 28, 2);
    const ImageSet val = ml::MakeSquares(10, 28, 3);
    pool_ = ml::MakeSquares(60, 28, 4);
    ASSERT_OK_AND_ASSIGN(NpyArray pool_images, ImagesToNpy(pool_));
    ASSERT_OK_AND_ASSIGN(NpyArray train_images, ImagesToNpy(train));
    ASSERT_OK_AND_ASSIGN(NpyArray val_images, ImagesToNpy(val));
    ASSERT_THAT(WriteNpz(data_, {{"train_images", train_images},
                                 {"train_labels", LabelsToNpy(train)},
                                 {"val_images", val_images},
                                 {"val_labels", LabelsToNpy(val)},
                                 {kNpzUnlabelledImages, pool_images}}),
                IsOk());
    for (int64_t row = 0; row < pool_.size(); ++row)
      truth_[ImageId(pool_, row)] = pool_.labels[row];
  }

  CliOutcome Run(std::vector<std::string> args, const std::string& group = "al") {
    return RunCliCommands(&AddCommands, group, std::move(args));
  }

  // The radiologist: fills in every row's label from the truth.
  std::string FillIn(const std::string& list) {
    std::vector<std::vector<std::string>> rows = ReadCsv(list);
    std::string text;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i > 0) rows[i].back() = std::to_string(truth_.at(rows[i][1]));
      text += absl::StrJoin(rows[i], ",") + "\n";
    }
    const std::string filled = dir_.Join("filled.csv");
    std::ofstream(filled) << text;
    return filled;
  }

  static ml::LocalModel* model_;
  ScratchDir dir_;
  std::string model_path_ = dir_.Join("global.pt");
  std::string data_ = dir_.Join("site.npz");
  ImageSet pool_;
  std::map<std::string, int64_t> truth_;
};

ml::LocalModel* ActiveLearningCommandsTest::model_ = nullptr;

TEST_F(ActiveLearningCommandsTest, RankWritesTheListAndSheetAndImportLabelsTheSite) {
  const std::string list = dir_.Join("to-label.csv");
  CliOutcome outcome = Run({"rank", "--model", model_path_, "--data", data_, "--budget", "10",
                            "--method", "entropy", "--out", list, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const nlohmann::json json = outcome.Json();
  EXPECT_EQ(json["chosen"], 10);
  EXPECT_EQ(json["unlabelled"], 60);
  EXPECT_EQ(json["labelled"], 20);
  const std::vector<std::vector<std::string>> rows = ReadCsv(list);
  ASSERT_EQ(rows.size(), 11u);
  EXPECT_EQ(absl::StrJoin(rows[0], ","), "rank,id,score,method,predicted,probability,label");
  // Least certain first: the predicted class's probability never falls.
  for (size_t i = 2; i < rows.size(); ++i) {
    EXPECT_LE(std::stod(rows[i - 1][5]), std::stod(rows[i][5]) + 1e-9) << i;
    EXPECT_EQ(rows[i][6], "");
    EXPECT_EQ(truth_.count(rows[i][1]), 1u);
  }
  ASSERT_OK_AND_ASSIGN(std::string png, ReadFileToString(dir_.Join("to-label.png")));
  EXPECT_EQ(png.substr(1, 3), "PNG");

  // An untouched list imports nothing and says why.
  outcome = Run({"import", list, "--data", data_});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.err, HasSubstr("no filled-in label"));

  outcome = Run({"import", FillIn(list), "--data", data_, "--json"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.Json()["imported"], 10);
  EXPECT_EQ(outcome.Json()["unlabelled_left"], 50);
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(data_));
  EXPECT_EQ(site.train.size(), 30);
  EXPECT_EQ(site.unlabelled.images.size(), 50);
  for (int64_t row = 20; row < 30; ++row) {
    EXPECT_EQ(site.train.labels[row], truth_.at(ImageId(site.train, row))) << row;
  }
}

TEST_F(ActiveLearningCommandsTest, EveryMethodRanksAndAShareBudgetCountsTheTrainingImages) {
  for (const char* method : {"margin", "bald", "coreset", "random"}) {
    const std::string list = dir_.Join(std::string(method) + ".csv");
    CliOutcome outcome = Run({"rank", "--model", model_path_, "--data", data_, "--budget", "5%",
                              "--method", method, "--out", list, "--mc-passes", "8", "--json"});
    ASSERT_EQ(outcome.exit_code, 0) << method << ": " << outcome.err;
    // 5% of 20 labelled + 60 unlabelled training images.
    EXPECT_EQ(outcome.Json()["chosen"], 4) << method;
    const std::vector<std::vector<std::string>> rows = ReadCsv(list);
    ASSERT_EQ(rows.size(), 5u);
    std::set<std::string> ids;
    for (size_t i = 1; i < rows.size(); ++i) ids.insert(rows[i][1]);
    EXPECT_EQ(ids.size(), 4u) << method;
  }
}

TEST_F(ActiveLearningCommandsTest, BadInputIsNamed) {
  CliOutcome outcome = Run({"rank", "--model", model_path_, "--data", data_, "--budget", "a few"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("--budget 'a few'"));
  outcome = Run({"rank", "--model", model_path_, "--data", data_, "--budget", "3", "--method",
                 "uncertainty"});
  EXPECT_EQ(outcome.exit_code, 2);
  const ImageSet train = ml::MakeSquares(20, 28, 2);
  ASSERT_OK_AND_ASSIGN(NpyArray train_images, ImagesToNpy(train));
  const std::string labelled_only = dir_.Join("labelled.npz");
  ASSERT_THAT(WriteNpz(labelled_only,
                       {{"train_images", train_images}, {"train_labels", LabelsToNpy(train)}}),
              IsOk());
  outcome = Run({"rank", "--model", model_path_, "--data", labelled_only, "--budget", "3"});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.err, HasSubstr("no unlabelled images"));
  outcome = Run({"import", dir_.Join("missing.csv"), "--data", data_});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.err, HasSubstr("does not exist"));
}

// Ten of 100 squares carry the wrong label; the audit ranks them first.
TEST_F(ActiveLearningCommandsTest, AuditLabelsRanksPlantedFlipsFirst) {
  ImageSet train = ml::MakeSquares(100, 28, 6);
  std::set<std::string> flipped;
  for (int64_t row = 3; row < 100; row += 10) {
    train.labels[row] = 1 - train.labels[row];
    flipped.insert(ImageId(train, row));
  }
  ASSERT_OK_AND_ASSIGN(NpyArray train_images, ImagesToNpy(train));
  const std::string noisy = dir_.Join("noisy.npz");
  ASSERT_THAT(
      WriteNpz(noisy, {{"train_images", train_images}, {"train_labels", LabelsToNpy(train)}}),
      IsOk());
  const std::string suspects = dir_.Join("suspects.csv");
  CliOutcome outcome = Run({"audit-labels", "--model", model_path_, "--data", noisy, "--out",
                            suspects, "--folds", "4", "--epochs", "1", "--json"},
                           "data");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_GE(outcome.Json()["flagged"].get<int>(), 5);
  const std::vector<std::vector<std::string>> rows = ReadCsv(suspects);
  ASSERT_EQ(rows.size(), 101u);
  EXPECT_EQ(absl::StrJoin(rows[0], ","), "rank,id,row,label,suggested,p_label,margin,flagged");
  int found = 0;
  for (size_t i = 1; i <= 10; ++i) found += flipped.count(rows[i][1]);
  EXPECT_GE(found, 9);
}

// A one-class site: 100 noise images of one class, 10 of them labelled
// the other. No model can tell them apart by their pixels; only the site's
// own class balance gives the minority label away, which the default
// cross-validated audit keeps (class-weighted fine-tuning would hide it).
TEST_F(ActiveLearningCommandsTest, AuditLabelsFindsTheMinorityLabelAtAOneClassSite) {
  ImageSet train = ml::MakeSquares(100, 28, 7);
  std::mt19937 rng(5);
  for (uint8_t& pixel : train.pixels) pixel = static_cast<uint8_t>(rng() & 0xff);
  std::set<std::string> flipped;
  for (int64_t row = 0; row < 100; ++row) {
    train.labels[row] = row % 10 == 4 ? 0 : 1;
    if (row % 10 == 4) flipped.insert(ImageId(train, row));
  }
  ASSERT_OK_AND_ASSIGN(NpyArray train_images, ImagesToNpy(train));
  const std::string site = dir_.Join("one-class.npz");
  ASSERT_THAT(
      WriteNpz(site, {{"train_images", train_images}, {"train_labels", LabelsToNpy(train)}}),
      IsOk());
  const std::string suspects = dir_.Join("suspects.csv");
  CliOutcome outcome = Run({"audit-labels", "--model", model_path_, "--data", site, "--out",
                            suspects, "--folds", "4", "--json"},
                           "data");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.err;
  const std::vector<std::vector<std::string>> rows = ReadCsv(suspects);
  ASSERT_EQ(rows.size(), 101u);
  int found = 0;
  for (size_t i = 1; i <= 10; ++i) found += flipped.count(rows[i][1]);
  EXPECT_GE(found, 9);
}

}  // namespace
}  // namespace fedmi::cli
