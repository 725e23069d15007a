// Active learning at a site (client/active_learning.h): the pool's scores,
// the list for the radiologist, and the loop inside a run, where the site
// ranks at the rounds its operator chose and trains on imported labels
// from the next round on.
#include "client/active_learning.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "client/site_worker.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ml/squares.h"
#include "tests/client/site_worker_test_util.h"
#include "tests/client/squares_model.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A pool of `rows` squares without labels, ids "pool/<row>"; rows 0 and 1
// are the same image.
UnlabelledPool SquarePool(int64_t rows) {
  UnlabelledPool pool;
  pool.images = ml::MakeSquares(rows, 28, 9);
  std::copy_n(pool.images.pixels.begin(), pool.images.ImageBytes(),
              pool.images.pixels.begin() + pool.images.ImageBytes());
  std::fill(pool.images.labels.begin(), pool.images.labels.end(), kNoLabel);
  for (int64_t row = 0; row < rows; ++row) pool.ids.push_back(absl::StrCat("pool/", row));
  return pool;
}

// 20 labelled squares and a pool of 30.
SiteDataset SquareSite() {
  SiteDataset data;
  data.train = ml::MakeSquares(20, 28, 2);
  data.unlabelled = SquarePool(30);
  return data;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ActiveLearningTest, ScoresThePoolAndWritesTheListAndSheet) {
  std::unique_ptr<ml::LocalModel> model = TrainedOnSquares();
  const SiteDataset data = SquareSite();
  ASSERT_OK_AND_ASSIGN(ScoredPool scored,
                       ScorePool(*model, data, AcquisitionMethod::kCoreset, 0, 1));
  EXPECT_EQ(scored.view.rows, 30);
  EXPECT_EQ(scored.duplicates, 1);
  EXPECT_TRUE(scored.duplicate[1]);
  EXPECT_EQ(scored.view.labelled_embeddings.size(),
            static_cast<size_t>(20 * scored.view.embedding_dim));
  ASSERT_OK_AND_ASSIGN(auto chosen,
                       Acquire(AcquisitionMethod::kCoreset, scored.view, 5, 1, scored.duplicate));
  ScratchDir dir;
  ASSERT_THAT(WriteToLabelList(data.unlabelled, scored.view, chosen, AcquisitionMethod::kCoreset,
                               dir.Join("to-label.csv"), dir.Join("to-label.png")),
              IsOk());
  const std::vector<std::string> lines = Lines(dir.Join("to-label.csv"));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "rank,id,score,method,predicted,probability,label");
  EXPECT_THAT(lines[1], StartsWith("1,pool/"));
  EXPECT_EQ(lines[1].back(), ',');  // the label is the radiologist's
  EXPECT_TRUE(Env::Default()->FileExists(dir.Join("to-label.png")));

  SiteDataset empty = data;
  empty.unlabelled = {};
  EXPECT_THAT(ScorePool(*model, empty, AcquisitionMethod::kEntropy, 0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unlabelled_images")));
  UnlabelledPool no_ids = data.unlabelled;
  no_ids.ids.pop_back();
  EXPECT_THAT(WriteToLabelList(no_ids, scored.view, chosen, AcquisitionMethod::kCoreset,
                               dir.Join("x.csv"), dir.Join("x.png")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("29 ids")));
}

TEST(ActiveLearningTest, WritesTheRoundsListAndNeverOverwritesOne) {
  std::unique_ptr<ml::LocalModel> model = TrainedOnSquares();
  const SiteDataset data = SquareSite();
  ScratchDir dir;
  ActiveLearningOptions options;
  options.rounds = {2};
  options.budget = *ParseAcquisitionBudget("10%");  // of 50 images: 5
  options.method = AcquisitionMethod::kBald;
  options.out_dir = dir.Join("al");
  ASSERT_OK_AND_ASSIGN(auto written, RankPoolForRound(*model, data, options, 4, 2));
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(written->csv, dir.Join("al/run-4-round-2-to-label.csv"));
  EXPECT_EQ(written->chosen, 5);
  EXPECT_EQ(Lines(written->csv).size(), 6u);
  EXPECT_TRUE(Env::Default()->FileExists(written->sheet));
  // The radiologist has started on it; the site restarts into round 2.
  std::ofstream(written->csv, std::ios::app) << "filled in\n";
  ASSERT_OK_AND_ASSIGN(auto again, RankPoolForRound(*model, data, options, 4, 2));
  EXPECT_FALSE(again.has_value());
  EXPECT_EQ(Lines(written->csv).back(), "filled in");
}

// The loop inside a run: round 2 writes the list, nothing is labelled by
// the site itself, and once the operator's import changes the data, round
// 3 trains on the new labels.
TEST(ActiveLearningTest, ASiteRanksInItsRoundAndTrainsOnImportedLabelsFromTheNextOne) {
  ScratchDir dir;
  SiteDataset data = NoiseSite(28, 1);
  data.unlabelled.images = Noise(30, 28, 1, 7);
  std::fill(data.unlabelled.images.labels.begin(), data.unlabelled.images.labels.end(), kNoLabel);
  for (int64_t row = 0; row < 30; ++row) data.unlabelled.ids.push_back(absl::StrCat("u", row));
  SiteWorkerOptions options = Options();
  options.active_learning.rounds = {2};
  options.active_learning.budget = *ParseAcquisitionBudget("4");
  options.active_learning.method = AcquisitionMethod::kEntropy;
  options.active_learning.out_dir = dir.Join("al");
  std::string version = "v1";
  int reloads = 0;
  options.data_version = [&version] { return version; };
  options.reload_data = [&](const DataGeometry&) -> absl::StatusOr<SiteDataset> {
    ++reloads;
    SiteDataset labelled = NoiseSite(28, 1);
    labelled.train = Noise(20, 28, 1, 1);  // 4 more labelled images
    return labelled;
  };
  SiteWorker worker(options, data);
  EXPECT_EQ(worker.DeclareTrainExamples(), 16);  // the site's hello
  const v1::RunSpec spec = CnnSpec(28, 1);
  ASSERT_OK_AND_ASSIGN(TensorBundle global, InitialWeights(spec));
  ASSERT_OK_AND_ASSIGN(LocalUpdate first, worker.Train(1, 1, spec, global));
  EXPECT_EQ(first.examples, 16);
  EXPECT_FALSE(std::filesystem::exists(dir.Join("al")));
  ASSERT_OK_AND_ASSIGN(LocalUpdate second, worker.Train(1, 2, spec, global));
  EXPECT_EQ(second.examples, 16);
  EXPECT_EQ(Lines(dir.Join("al/run-1-round-2-to-label.csv")).size(), 5u);
  EXPECT_EQ(reloads, 0);
  version = "v2";  // fedmi al import ran
  ASSERT_OK_AND_ASSIGN(LocalUpdate third, worker.Train(1, 3, spec, global));
  EXPECT_EQ(reloads, 1);
  EXPECT_EQ(worker.train_examples(), 20);
  // Trained on all 20, but the coordinator refuses a count above the
  // hello's: the update weighs 16 until the site connects again.
  EXPECT_EQ(third.examples, 16);
  EXPECT_EQ(third.train_metrics.examples(), 16);
  EXPECT_EQ(worker.DeclareTrainExamples(), 20);  // a new connection
  ASSERT_OK_AND_ASSIGN(LocalUpdate fourth, worker.Train(1, 4, spec, global));
  EXPECT_EQ(fourth.examples, 20);
  EXPECT_EQ(reloads, 1);  // unchanged since
}

// A site picked for rounds 1, 4 and 5 ranks once at round 4 for the listed
// rounds 2 and 3 it missed, naming the list after round 3; a daemon
// restarted later finds that list and keeps it.
TEST(ActiveLearningTest, ARoundTheSiteSkipsIsServedAtItsNextRound) {
  std::unique_ptr<ml::LocalModel> model = TrainedOnSquares();
  const SiteDataset data = SquareSite();
  ScratchDir dir;
  ActiveLearningOptions options;
  options.rounds = {2, 3};
  options.budget = *ParseAcquisitionBudget("3");
  options.method = AcquisitionMethod::kMargin;
  options.out_dir = dir.Join("al");
  ActiveLearningLoop loop(options);
  loop.AtRoundStart(*model, data, 7, 1);
  EXPECT_FALSE(std::filesystem::exists(dir.Join("al")));
  loop.AtRoundStart(*model, data, 7, 4);
  EXPECT_TRUE(std::filesystem::exists(dir.Join("al/run-7-round-3-to-label.csv")));
  EXPECT_FALSE(std::filesystem::exists(dir.Join("al/run-7-round-2-to-label.csv")));
  loop.AtRoundStart(*model, data, 7, 5);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.Join("al")), {}), 2);  // csv, png
  std::ofstream(dir.Join("al/run-7-round-3-to-label.csv"), std::ios::app) << "filled in\n";
  ActiveLearningLoop restarted(options);
  restarted.AtRoundStart(*model, data, 7, 6);
  EXPECT_EQ(Lines(dir.Join("al/run-7-round-3-to-label.csv")).back(), "filled in");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.Join("al")), {}), 2);
  // Another run starts over.
  loop.AtRoundStart(*model, data, 8, 2);
  EXPECT_TRUE(std::filesystem::exists(dir.Join("al/run-8-round-2-to-label.csv")));
}

// Data changed on disk that cannot be used (unreadable, or its classes
// renamed) leaves the site training on what it read before, and is not
// read again until it changes once more.
TEST(ActiveLearningTest, AnUnusableChangeKeepsTheDataInHand) {
  SiteDataset data = NoiseSite(28, 1);
  data.report.class_names = {"normal", "pneumonia"};
  SiteWorkerOptions options = Options();
  std::string version = "v1";
  int reads = 0;
  absl::StatusOr<SiteDataset> next = absl::DataLossError("labels.csv is half written");
  options.data_version = [&version] { return version; };
  options.reload_data = [&](const DataGeometry&) -> absl::StatusOr<SiteDataset> {
    ++reads;
    return next;
  };
  SiteWorker worker(options, data);
  const v1::RunSpec spec = CnnSpec(28, 1);
  ASSERT_OK_AND_ASSIGN(TensorBundle global, InitialWeights(spec));
  version = "v2";
  ASSERT_OK_AND_ASSIGN(LocalUpdate first, worker.Train(1, 1, spec, global));
  EXPECT_EQ(first.examples, 16);
  EXPECT_EQ(reads, 1);
  ASSERT_OK_AND_ASSIGN(LocalUpdate second, worker.Train(1, 2, spec, global));
  EXPECT_EQ(reads, 1);  // the same unreadable version
  SiteDataset renamed = NoiseSite(28, 1);
  renamed.train = Noise(20, 28, 1, 1);
  renamed.report.class_names = {"effusion", "normal"};
  next = renamed;
  version = "v3";
  ASSERT_OK_AND_ASSIGN(LocalUpdate third, worker.Train(1, 3, spec, global));
  EXPECT_EQ(reads, 2);
  EXPECT_EQ(worker.train_examples(), 16);
  renamed.report.class_names = {"normal", "pneumonia"};
  next = renamed;
  version = "v4";
  ASSERT_OK_AND_ASSIGN(LocalUpdate fourth, worker.Train(1, 4, spec, global));
  EXPECT_EQ(reads, 3);
  EXPECT_EQ(worker.train_examples(), 20);
  EXPECT_EQ(fourth.examples, 20);  // no hello declared a smaller count
}

}  // namespace
}  // namespace fedmi
