// RoundManager with a server optimizer (round_manager_optimizer.cc): the
// committed model is the optimizer's step from the aggregate, hand-computed
// over two rounds of FedAvgM; the state is committed with each round and a
// manager loaded again from storage mid-run continues bit for bit like one
// that never stopped (FedAdam).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/runspec/strategy_names.h"
#include "common/tensor/bundle_transfer.h"
#include "coordinator/round_manager.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

v1::RunSpec OptimizerSpec(const char* kind) {
  v1::RunSpec spec = Spec(/*rounds=*/3, /*min_sites=*/2);
  spec.set_strategy("fedavg");
  spec.mutable_server_optimizer()->set_kind(kind);
  return spec;
}

// A federation of two sites whose updates the test writes; one storage and
// model store, which a manager loaded again picks up where the last stopped.
class RoundManagerOptimizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(models_, ModelStore::Open(dir_.Join("models")));
    ASSERT_THAT(Env::Default()->CreateDirs(dir_.Join("spool")), IsOk());
  }

  int64_t CreateRun(const v1::RunSpec& spec) {
    RunRecord record;
    record.spec = spec;
    absl::StatusOr<int64_t> run = storage_->CreateRun(record);
    EXPECT_THAT(run, IsOk());
    return run.ok() ? *run : -1;
  }

  std::unique_ptr<RoundManager> Load(int64_t run) {
    RoundManager::Deps deps{storage_.get(), models_.get(), &clock_, &roster_, ""};
    absl::StatusOr<std::unique_ptr<RoundManager>> manager = RoundManager::Load(run, deps);
    EXPECT_THAT(manager, IsOk());
    return manager.ok() ? *std::move(manager) : nullptr;
  }

  absl::Status Upload(RoundManager& manager, const std::string& site, int32_t round,
                      const TensorBundle& bundle, int64_t examples = 10) {
    ReceivedUpdate update;
    ASSIGN_OR_RETURN(update.path, WriteBundleFile(dir_.Join("spool"), bundle, &update.sha256));
    update.metadata.set_site(site);
    update.metadata.set_run_id(manager.run_id());
    update.metadata.set_round(round);
    update.metadata.set_examples(examples);
    update.bytes = bundle.body.size();
    return manager.OnUpdate(site, std::move(update));
  }

  absl::Status EvaluateEverywhere(RoundManager& manager, int32_t round) {
    for (const char* site : {"site-a", "site-b"}) {
      v1::EvalReport report;
      report.set_run_id(manager.run_id());
      report.set_round(round);
      *report.mutable_metrics() = EvalMetrics(20, 0.5, 0.75, 0.8);
      RETURN_IF_ERROR(manager.OnEvalReport(site, report));
    }
    return absl::OkStatus();
  }

  // Both sites' updates of `round`: the sites move the global model by
  // fixed steps, site-a twice as many examples as site-b.
  absl::Status TrainRound(RoundManager& manager, int32_t round, const std::vector<float>& a,
                          const std::vector<float>& b) {
    RETURN_IF_ERROR(Upload(manager, "site-a", round, Model(a), /*examples=*/20));
    RETURN_IF_ERROR(Upload(manager, "site-b", round, Model(b), /*examples=*/10));
    return EvaluateEverywhere(manager, round);
  }

  absl::StatusOr<RoundRecord> LastRound(int64_t run) {
    ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
    if (rounds.empty()) return absl::NotFoundError("no round");
    return rounds.back();
  }

  absl::StatusOr<std::vector<float>> LastModel(int64_t run) {
    ASSIGN_OR_RETURN(RoundRecord last, LastRound(run));
    ASSIGN_OR_RETURN(std::string path, models_->PathFor(last.model_sha256));
    ASSIGN_OR_RETURN(TensorBundle model, ReadBundleFile(path));
    return FloatsOf(model);
  }

  ScratchDir dir_;
  std::unique_ptr<Storage> storage_ = NewMemoryStorage();
  std::unique_ptr<ModelStore> models_;
  FakeClock clock_;
  ConnectedRoster roster_{{"site-a", "site-b"}};
};

TEST_F(RoundManagerOptimizerTest, FedAvgMMovesTheModelByMomentumOverTwoRounds) {
  v1::RunSpec spec = OptimizerSpec("fedavgm");
  spec.mutable_server_optimizer()->set_server_lr(0.5);
  spec.mutable_server_optimizer()->set_momentum(0.5);
  const int64_t run = CreateRun(spec);
  std::unique_ptr<RoundManager> manager = Load(run);
  ASSERT_NE(manager, nullptr);
  ASSERT_THAT(Upload(*manager, "site-a", 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  // Round 1: the aggregate is (2 * 3 + 1 * 6) / 3 = 4 in the first
  // parameter, so d = 4, u = 4 and x = 0 + 0.5 * 4 = 2.
  ASSERT_THAT(TrainRound(*manager, 1, {3, 0, 0, 0, 1, 0}, {6, 0, 0, 0, -2, 0}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<float> after_one, LastModel(run));
  EXPECT_EQ(after_one, (std::vector<float>{2, 0, 0, 0, 0, 0}));
  ASSERT_OK_AND_ASSIGN(RoundRecord first, LastRound(run));
  EXPECT_FALSE(first.server_state_sha256.empty());
  // Round 2: aggregate 2 + 1 = 3 in the first parameter, d = 1,
  // u = 0.5 * 4 + 1 = 3 and x = 2 + 0.5 * 3 = 3.5; in the bias, aggregate
  // (2 * 1 + 1 * 4) / 3 = 2 after x = 0 (u = 0): d = u = 2, x = 1.
  ASSERT_THAT(TrainRound(*manager, 2, {3, 0, 0, 0, 1, 0}, {3, 0, 0, 0, 4, 0}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<float> after_two, LastModel(run));
  EXPECT_EQ(after_two, (std::vector<float>{3.5f, 0, 0, 0, 1, 0}));
  ASSERT_OK_AND_ASSIGN(RoundRecord second, LastRound(run));
  EXPECT_NE(second.server_state_sha256, first.server_state_sha256);
  // The state is kept from garbage collection with the models.
  ASSERT_OK_AND_ASSIGN(std::set<std::string> referenced, storage_->ReferencedModels());
  EXPECT_EQ(referenced.count(second.server_state_sha256), 1u);
}

// SCAFFOLD's server control variate is the sites' mean as aggregated; the
// server optimizer moves only the weights.
TEST_F(RoundManagerOptimizerTest, ScaffoldControlVariatesAreTakenAsAggregated) {
  v1::RunSpec spec = OptimizerSpec("fedavgm");
  spec.mutable_server_optimizer()->set_server_lr(0.5);
  spec.mutable_server_optimizer()->set_momentum(0.5);
  const std::vector<TensorSpec> specs = {{"fc.weight", DType::kFloat32, {2}},
                                         {"scaffold.control/fc.weight", DType::kFloat32, {2}}};
  const int64_t run = CreateRun(spec);
  std::unique_ptr<RoundManager> manager = Load(run);
  ASSERT_NE(manager, nullptr);
  ASSERT_THAT(Upload(*manager, "site-a", 0, FloatBundle(specs, {0, 0, 0, 0})), IsOk());
  ASSERT_THAT(Upload(*manager, "site-a", 1, FloatBundle(specs, {3, 0, 1, 2}), 20), IsOk());
  ASSERT_THAT(Upload(*manager, "site-b", 1, FloatBundle(specs, {6, 0, 4, -1}), 10), IsOk());
  ASSERT_THAT(EvaluateEverywhere(*manager, 1), IsOk());
  // The weights' aggregate (4, 0) is a step of 0.5 * 4; the control
  // variates' (2, 1) is kept as it is.
  ASSERT_OK_AND_ASSIGN(std::vector<float> model, LastModel(run));
  EXPECT_EQ(model, (std::vector<float>{2, 0, 2, 1}));
}

// FedAdam's first step moves every parameter by about the server lr,
// whatever the aggregate's size: on a running variance of 0.05 that step
// would leave it at -0.05 and the model NaN. Running statistics are taken as
// aggregated.
TEST_F(RoundManagerOptimizerTest, BatchNormRunningStatisticsAreTakenAsAggregated) {
  v1::RunSpec spec = OptimizerSpec("fedadam");
  spec.mutable_server_optimizer()->set_server_lr(0.1);
  const std::vector<TensorSpec> specs = {{"bn.weight", DType::kFloat32, {1}},
                                         {"bn.running_mean", DType::kFloat32, {1}},
                                         {"bn.running_var", DType::kFloat32, {1}}};
  const int64_t run = CreateRun(spec);
  std::unique_ptr<RoundManager> manager = Load(run);
  ASSERT_NE(manager, nullptr);
  ASSERT_THAT(Upload(*manager, "site-a", 0, FloatBundle(specs, {1, 0, 0.15f})), IsOk());
  ASSERT_THAT(Upload(*manager, "site-a", 1, FloatBundle(specs, {0.9f, 0.2f, 0.05f}), 20), IsOk());
  ASSERT_THAT(Upload(*manager, "site-b", 1, FloatBundle(specs, {0.9f, 0.5f, 0.05f}), 10), IsOk());
  ASSERT_THAT(EvaluateEverywhere(*manager, 1), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<float> model, LastModel(run));
  ASSERT_EQ(model.size(), 3u);
  // The weight takes Adam's first step from m = 0 and v = tau^2 (defaults
  // beta1 0.9, beta2 0.99, tau 1e-3), with d = 0.9 - 1.
  const double d = static_cast<double>(0.9f) - 1.0;
  const double m = 0.1 * d;
  const double v = 0.99 * static_cast<double>(static_cast<float>(1e-6)) + 0.01 * d * d;
  EXPECT_NEAR(model[0], 1 + 0.1 * m / (std::sqrt(v) + 0.001), 1e-6);
  EXPECT_FLOAT_EQ(model[1], (20 * 0.2f + 10 * 0.5f) / 30);
  EXPECT_FLOAT_EQ(model[2], 0.05f);
}

TEST(RunningStatisticTest, OnlyNamesOfBatchNormRunningStatistics) {
  EXPECT_TRUE(IsRunningStatistic("layer1.0.bn1.running_var"));
  EXPECT_TRUE(IsRunningStatistic("features.norm.running_mean"));
  EXPECT_TRUE(IsRunningStatistic("running_mean"));
  EXPECT_FALSE(IsRunningStatistic("bn.weight"));
  EXPECT_FALSE(IsRunningStatistic("my_running_var"));
  EXPECT_FALSE(IsRunningStatistic("bn.running_var.extra"));
  EXPECT_FALSE(IsRunningStatistic("bn.num_batches_tracked"));
}

TEST_F(RoundManagerOptimizerTest, AManagerLoadedAgainMidRunContinuesBitForBit) {
  const v1::RunSpec spec = OptimizerSpec("fedadam");
  const std::vector<std::vector<float>> a = {{0.3f, -0.1f, 0.7f, 0.2f, 1.1f, -0.4f},
                                             {0.5f, -0.3f, 0.6f, 0.1f, 0.9f, -0.2f},
                                             {0.2f, 0.1f, 0.8f, 0.4f, 1.3f, -0.6f}};
  const std::vector<std::vector<float>> b = {{-0.2f, 0.4f, 0.1f, 0.3f, 0.8f, 0.5f},
                                             {0.1f, 0.2f, 0.3f, -0.1f, 0.7f, 0.4f},
                                             {-0.4f, 0.5f, 0.2f, 0.6f, 1.0f, 0.3f}};

  const int64_t uninterrupted = CreateRun(spec);
  std::unique_ptr<RoundManager> manager = Load(uninterrupted);
  ASSERT_NE(manager, nullptr);
  ASSERT_THAT(Upload(*manager, "site-a", 0, Model({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f})), IsOk());
  for (int round = 1; round <= 3; ++round) {
    ASSERT_THAT(TrainRound(*manager, round, a[round - 1], b[round - 1]), IsOk()) << round;
  }
  ASSERT_EQ(manager->phase(), RunPhase::kFinished);
  manager.reset();

  const int64_t resumed = CreateRun(spec);
  manager = Load(resumed);
  ASSERT_NE(manager, nullptr);
  ASSERT_THAT(Upload(*manager, "site-a", 0, Model({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f})), IsOk());
  ASSERT_THAT(TrainRound(*manager, 1, a[0], b[0]), IsOk());
  // Round 2 is interrupted after one upload; its new manager starts the
  // round again from the committed model and state of round 1.
  ASSERT_THAT(Upload(*manager, "site-a", 2, Model(a[1]), /*examples=*/20), IsOk());
  manager = Load(resumed);
  ASSERT_NE(manager, nullptr);
  ASSERT_EQ(manager->phase(), RunPhase::kTraining);
  for (int round = 2; round <= 3; ++round) {
    ASSERT_THAT(TrainRound(*manager, round, a[round - 1], b[round - 1]), IsOk()) << round;
  }
  ASSERT_EQ(manager->phase(), RunPhase::kFinished);

  ASSERT_OK_AND_ASSIGN(RoundRecord expected, LastRound(uninterrupted));
  ASSERT_OK_AND_ASSIGN(RoundRecord got, LastRound(resumed));
  EXPECT_EQ(got.model_sha256, expected.model_sha256);
  EXPECT_EQ(got.server_state_sha256, expected.server_state_sha256);
  // And FedAdam did move the model otherwise than FedAvg would have: the
  // aggregate of the last round is not the model.
  ASSERT_OK_AND_ASSIGN(std::vector<float> model, LastModel(resumed));
  EXPECT_NE(model[0], (2 * a[2][0] + b[2][0]) / 3);
}

}  // namespace
}  // namespace fedmi
