// Fault tests of a round commit: the model store's file system fails while
// the coordinator publishes a new global model. What the coordinator does
// today, asserted exactly: the upload that brought the model is refused with
// a message naming the paths, nothing is committed, earlier rounds and model
// files stay byte for byte as they were, and once the disk heals the site's
// retry commits the round exactly once and the run goes on to the right
// FedAvg model.
//
// Both ways a model reaches the store go through its Env: the rename of a
// spooled initial model, and the BundleFileWriter that writes the aggregate
// of a trained round.
#include <filesystem>
#include <map>

#include "tests/common/base/fault_injection_env.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class CommitFaultTest : public FederationTest {
 protected:
  void SetUp() override {
    models_env_ = &faulty_disk_;
    FederationTest::SetUp();
  }

  // Every file of the model store, by name, with its bytes.
  std::map<std::string, std::string> ModelFiles() {
    std::map<std::string, std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(models_->dir())) {
      absl::StatusOr<std::string> bytes = Env::Default()->ReadFile(entry.path().string());
      EXPECT_THAT(bytes, IsOk());
      files[entry.path().filename().string()] = bytes.ok() ? *bytes : "";
    }
    return files;
  }

  // Rounds 1 of `run`: both sites train (weights 1 : 3) and evaluate.
  void TrainAndEvaluateRoundOne(int64_t run) {
    ASSERT_THAT(Upload("site-a", run, 1, Model({1, 2, 3, 4, 5, 6}), /*examples=*/1), IsOk());
    ASSERT_THAT(Upload("site-b", run, 1, Model({5, 6, 7, 8, 9, 10}), /*examples=*/3), IsOk());
    for (const std::string site : {"site-a", "site-b"}) {
      ASSERT_THAT(Report(site, run, 1, EvalMetrics(20, 0.5, 0.75, 0.8)), IsOk());
    }
  }

  FaultInjectionEnv faulty_disk_;
};

TEST_F(CommitFaultTest, FailedPublishOfTheInitialModelIsRefusedAndTheRetryCommitsOnce) {
  // A finished run whose rounds and model files must survive the fault.
  const int64_t first = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/2), {"site-a", "site-b"});
  TrainAndEvaluateRoundOne(first);
  ASSERT_EQ(Status(first).state(), "done");
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> first_rounds, storage_->ListRounds(first));
  const std::map<std::string, std::string> files_before = ModelFiles();
  ASSERT_THAT(files_before, SizeIs(2));

  const int64_t second = StartRun(Spec(/*rounds=*/1, /*min_sites=*/2));
  ASSERT_THAT(Channel("site-a").Of(Kind::kInit), SizeIs(2));
  const TensorBundle initial = Model({0.25f, 0.25f, 0.25f, 0.25f, 0, 0});
  const std::string initial_sha = HexEncode(Sha256Of(initial));
  faulty_disk_.FailRenames(absl::ResourceExhaustedError("No space left on device"));

  EXPECT_THAT(
      Upload("site-a", second, 0, initial),
      StatusIs(absl::StatusCode::kInternal,
               AllOf(HasSubstr("initial model: cannot move "), HasSubstr(options_.spool_dir),
                     HasSubstr(models_->dir() + "/" + initial_sha),
                     HasSubstr("No space left on device"))));

  // Refused cleanly: nothing committed, nothing half-published, no spool
  // file left, the earlier run untouched byte for byte.
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> second_rounds, storage_->ListRounds(second));
  EXPECT_THAT(second_rounds, IsEmpty());
  EXPECT_EQ(Status(second).state(), "running");
  EXPECT_EQ(Status(second).phase(), "initializing");
  EXPECT_THAT(models_->PathFor(initial_sha), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(SpoolFileCount(), 0u);
  EXPECT_EQ(ModelFiles(), files_before);
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> first_rounds_after, storage_->ListRounds(first));
  ASSERT_EQ(first_rounds_after.size(), first_rounds.size());
  for (size_t i = 0; i < first_rounds.size(); ++i) {
    EXPECT_EQ(first_rounds_after[i].model_sha256, first_rounds[i].model_sha256);
    EXPECT_EQ(first_rounds_after[i].state, first_rounds[i].state);
  }

  // The disk heals and the site sends its initial model again.
  faulty_disk_.Heal();
  ASSERT_THAT(Upload("site-a", second, 0, initial), IsOk());
  ASSERT_OK_AND_ASSIGN(second_rounds, storage_->ListRounds(second));
  ASSERT_THAT(second_rounds, SizeIs(1));
  EXPECT_EQ(second_rounds[0].round, 0);
  EXPECT_EQ(second_rounds[0].model_sha256, initial_sha);
  ASSERT_OK_AND_ASSIGN(TensorBundle stored_initial, ReadModel(second, 0));
  EXPECT_EQ(stored_initial.body, initial.body);

  TrainAndEvaluateRoundOne(second);
  EXPECT_EQ(Status(second).state(), "done");
  ASSERT_OK_AND_ASSIGN(second_rounds, storage_->ListRounds(second));
  ASSERT_THAT(second_rounds, SizeIs(2)) << "round 0 committed exactly once";
  ASSERT_OK_AND_ASSIGN(TensorBundle aggregate, ReadModel(second, 1));
  EXPECT_THAT(FloatsOf(aggregate), ElementsAre(4, 5, 6, 7, 8, 9));
  for (const auto& [name, bytes] : files_before) {
    EXPECT_EQ(ModelFiles().at(name), bytes) << name;
  }
}

// The disk fills while the aggregate of round 1 is written: the run fails
// with the reason, round 1 is never committed, and the store keeps exactly
// the files it had (the half-written temporary is gone).
TEST_F(CommitFaultTest, DiskFullWhileWritingTheRoundModelCommitsNothing) {
  const int64_t run = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/2), {"site-a", "site-b"});
  const std::map<std::string, std::string> files_before = ModelFiles();
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds_before, storage_->ListRounds(run));

  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 2, 3, 4, 5, 6}), /*examples=*/1), IsOk());
  faulty_disk_.FailWritesAfter(0);
  absl::Status last = Upload("site-b", run, 1, Model({5, 6, 7, 8, 9, 10}), /*examples=*/3);
  faulty_disk_.Heal();

  // The update itself was accepted; the round's commit is what failed, and
  // the run says why, naming the file the disk refused.
  EXPECT_THAT(last, IsOk());
  const v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(), AllOf(HasSubstr("round 1: cannot write " + models_->dir() + "/.tmp-"),
                                    HasSubstr("No space left on device")));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds_after, storage_->ListRounds(run));
  EXPECT_EQ(rounds_after.size(), rounds_before.size()) << "round 1 must not be committed";
  EXPECT_EQ(ModelFiles(), files_before) << "no half-written model in the store";
  EXPECT_EQ(SpoolFileCount(), 0u);
}

}  // namespace
}  // namespace fedmi
