// Where a run's model comes from, end to end with the real binaries over
// loopback: a run that starts from another run's exported weights, with the
// backbone frozen so that updates carry only the head; a user's own
// TorchScript module (built here with torch::jit::Module::define) trained
// by two hospitals; and the refusals a site makes before any training: a
// model file its policy does not list (named by its hash) and one whose
// output does not fit the run.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/local_federation.h"
#include "cli/model_files.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/data/data_split.h"
#include "common/runspec/transfer.h"
#include "common/tensor/bundle_transfer.h"
#include "common/tensor/tensor_codec.h"
#include "tests/client/ml/user_modules.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 11;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

v1::RunSpec CnnSpec(int rounds) {
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_rounds(rounds);
  spec.set_min_sites(2);
  spec.set_batch_size(64);
  spec.set_seed(kSeed);
  return spec;
}

class ModelSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = DataPath(scratch_.path());
    DataSplitOptions split;
    split.input = source_;
    split.sites = 2;
    split.partition.kind = PartitionKind::kIid;
    split.partition.seed = kSeed;
    split.out_dir = scratch_.path() + "/shards";
    ASSERT_OK_AND_ASSIGN(shards_, SplitDataset(split));
    // The hospitals' own model file, and their policy that lists it.
    user_model_ = scratch_.path() + "/user_net.pt";
    ASSERT_THAT(user_modules::WriteUserClassifier(user_model_, 1, 2, kSeed), IsOk());
    user_model_sha_ = HexEncode(Sha256::Digest(ReadAll(user_model_)));
    // Listed too, but with three logits: no two-class run can use it.
    three_logits_ = scratch_.path() + "/three_logits.pt";
    ASSERT_THAT(user_modules::WriteUserClassifier(three_logits_, 1, 3, kSeed), IsOk());
    const std::string policy = scratch_.path() + "/policy.toml";
    std::ofstream(policy) << "allowed_model_sha256 = [\"" << user_model_sha_ << "\", \""
                          << HexEncode(Sha256::Digest(ReadAll(three_logits_))) << "\"]\n";
    ASSERT_THAT(Env::Default()->CreateDirs(scratch_.path() + "/run/logs"), IsOk());
    ASSERT_OK_AND_ASSIGN(federation_, cli::LocalFederation::Start(scratch_.path() + "/run", false));
    for (const SiteShardReport& shard : shards_) {
      cli::SiteOptions site;
      site.name = shard.site;
      site.data = shard.path;
      site.policy = policy;
      site.threads = 1;
      ASSERT_THAT(federation_->AddSite(site), IsOk());
    }
    ASSERT_THAT(federation_->WaitForSites(absl::Seconds(120)), IsOk());
  }

  cli::AdminClient& admin() { return federation_->admin(); }

  v1::RunStatus RunToEnd(const v1::RunSpec& spec) {
    absl::StatusOr<int64_t> run = admin().StartRun(spec);
    EXPECT_THAT(run, IsOk());
    if (!run.ok()) return v1::RunStatus();
    absl::StatusOr<v1::RunStatus> status = cli::WatchRunToEnd(admin(), *run);
    EXPECT_THAT(status, IsOk());
    return status.ok() ? *status : v1::RunStatus();
  }

  std::string Upload(const TensorBundle& bundle) {
    absl::StatusOr<v1::ArtifactReceipt> receipt = admin().UploadArtifact(bundle);
    EXPECT_THAT(receipt, IsOk());
    return receipt.ok() ? receipt->sha256() : "";
  }

  ScratchDir scratch_;
  std::string source_;
  std::vector<SiteShardReport> shards_;
  std::string user_model_;
  std::string user_model_sha_;
  std::string three_logits_;
  std::unique_ptr<cli::LocalFederation> federation_;
};

TEST_F(ModelSourcesTest, ARunStartsFromExportedWeightsAndAFrozenBackboneSendsOnlyTheHead) {
  const v1::RunStatus first = RunToEnd(CnnSpec(2));
  ASSERT_EQ(first.state(), "done") << first.error();
  const std::string first_model = scratch_.path() + "/first.pt";
  ASSERT_THAT(cli::ExportModelToFile(admin(), first.run_id(), -1, first_model, nullptr), IsOk());
  ASSERT_OK_AND_ASSIGN(cli::ModelEvaluation first_test,
                       cli::EvaluateModelOnSplit(first_model, source_, "test"));

  cli::TorchModelRunner runner;
  ASSERT_OK_AND_ASSIGN(TensorBundle weights, runner.ReadWeights(first_model));
  v1::RunSpec spec = CnnSpec(1);
  spec.set_seed(kSeed + 1);  // another initialisation: only loading explains a match
  spec.mutable_transfer()->set_init_weights_sha256(Upload(weights));
  for (const char* prefix : {"conv", "bn", "fc1."})
    spec.mutable_transfer()->add_freeze_prefixes(prefix);
  const v1::RunStatus second = RunToEnd(spec);
  ASSERT_EQ(second.state(), "done") << second.error();

  // Round 0 is the first run's final model, so it begins at its AUC.
  const std::string start = scratch_.path() + "/start.pt";
  ASSERT_THAT(cli::ExportModelToFile(admin(), second.run_id(), 0, start, nullptr), IsOk());
  ASSERT_OK_AND_ASSIGN(cli::ModelEvaluation start_test,
                       cli::EvaluateModelOnSplit(start, source_, "test"));
  std::cout << "first run test AUC " << first_test.metrics.auc << ", second run's round 0 "
            << start_test.metrics.auc << std::endl;
  EXPECT_EQ(start_test.metrics.auc, first_test.metrics.auc);

  // Each site's update held only fc2: (2 x 128 + 2) float32 = 1032 bytes,
  // against the whole CNN in the first run.
  // Rounds 1.. (the initial model is not a round of the status).
  ASSERT_EQ(second.rounds_size(), 1);
  const int64_t head_bytes = (2 * 128 + 2) * 4;
  for (const v1::SiteParticipation& site : second.rounds(0).sites()) {
    EXPECT_EQ(site.train_metrics().update_bytes(), head_bytes) << site.site();
  }
  for (const v1::SiteParticipation& site : first.rounds(0).sites()) {
    EXPECT_GT(site.train_metrics().update_bytes(), 50 * head_bytes) << site.site();
  }
  std::cout << "update bytes: whole cnn " << first.rounds(0).sites(0).train_metrics().update_bytes()
            << ", head only " << second.rounds(0).sites(0).train_metrics().update_bytes()
            << std::endl;
  // The frozen tensors kept their values; the head trained.
  ASSERT_OK_AND_ASSIGN(TensorBundle start_weights, runner.ReadWeights(start));
  const std::string trained = scratch_.path() + "/trained.pt";
  ASSERT_THAT(cli::ExportModelToFile(admin(), second.run_id(), 1, trained, nullptr), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle trained_weights, runner.ReadWeights(trained));
  ASSERT_OK_AND_ASSIGN(TensorBundle frozen_before,
                       SelectTensors(start_weights, {"conv1.weight", "fc1.weight"}));
  ASSERT_OK_AND_ASSIGN(TensorBundle frozen_after,
                       SelectTensors(trained_weights, {"conv1.weight", "fc1.weight"}));
  EXPECT_EQ(frozen_before.body, frozen_after.body);
  ASSERT_OK_AND_ASSIGN(TensorBundle head_before, SelectTensors(start_weights, {"fc2.weight"}));
  ASSERT_OK_AND_ASSIGN(TensorBundle head_after, SelectTensors(trained_weights, {"fc2.weight"}));
  EXPECT_NE(head_before.body, head_after.body);
}

TEST_F(ModelSourcesTest, HospitalsTrainTheirOwnModuleAndRefuseFilesTheyDidNotList) {
  v1::RunSpec spec = CnnSpec(2);
  spec.set_model(kCustomModel);
  spec.set_model_file_sha256(Upload(FileAsBundle(ReadAll(user_model_))));
  EXPECT_EQ(spec.model_file_sha256(), user_model_sha_);
  const v1::RunStatus own = RunToEnd(spec);
  ASSERT_EQ(own.state(), "done") << own.error();
  ASSERT_EQ(own.rounds_size(), 2);
  const v1::Metrics& last = own.rounds(1).eval_metrics();
  std::cout << "user module, round 2 validation AUC " << last.auc() << std::endl;
  EXPECT_GT(last.examples(), 0);
  EXPECT_GT(last.auc(), 0.6);
  // The trained module exports as TorchScript, rebuilt from the hospitals'
  // file, and scores on the test split like any fedmi model.
  cli::TorchModelRunner runner;
  const std::string exported = scratch_.path() + "/own.pt";
  cli::ExportFormat format;
  EXPECT_THAT(cli::ExportModelToFile(admin(), own.run_id(), -1, exported, format, &runner, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--model-file")));
  format.model_file = user_model_;
  ASSERT_THAT(cli::ExportModelToFile(admin(), own.run_id(), -1, exported, format, &runner, nullptr),
              IsOk());
  ASSERT_OK_AND_ASSIGN(cli::ModelEvaluation own_test,
                       cli::EvaluateModelOnSplit(exported, source_, "test"));
  std::cout << "user module, test AUC of the exported .pt " << own_test.metrics.auc << std::endl;
  EXPECT_GT(own_test.metrics.auc, 0.6);

  // Another file (other weights: another hash) is refused by the site's
  // policy, by hash, before anything runs.
  const std::string other = scratch_.path() + "/other_net.pt";
  ASSERT_THAT(user_modules::WriteUserClassifier(other, 1, 2, kSeed + 1), IsOk());
  spec.set_model_file_sha256(Upload(FileAsBundle(ReadAll(other))));
  const v1::RunStatus unlisted = RunToEnd(spec);
  EXPECT_EQ(unlisted.state(), "failed");
  EXPECT_THAT(unlisted.error(),
              AllOf(HasSubstr("site policy: model file sha256 " + spec.model_file_sha256()),
                    HasSubstr("not in allowed_model_sha256")));

  // A listed file whose forward does not fit the run is refused before
  // training, saying what it returned and what the run needs.
  spec.set_model_file_sha256(Upload(FileAsBundle(ReadAll(three_logits_))));
  const v1::RunStatus misfit = RunToEnd(spec);
  EXPECT_EQ(misfit.state(), "failed");
  EXPECT_THAT(misfit.error(),
              AllOf(HasSubstr("returns shape [2,3]"), HasSubstr("needs logits of shape [2,2]")));
  EXPECT_EQ(misfit.rounds_size(), 0);
}

}  // namespace
}  // namespace fedmi
