// RoundManager driven directly, with a fake roster instead of Federation: the
// crash points of a round are reached through the injected FaultHook, once
// per round and in the order the round passes them; a differentially
// private run stops at its budget and keeps its last model.
#include "coordinator/round_manager.h"

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/audit/audit_actions.h"
#include "common/privacy/dp_plan.h"
#include "coordinator/audit_log.h"
#include "coordinator/run_status.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// Keeps every point reached, in order.
class RecordingFaultHook : public FaultHook {
 public:
  void Reached(FaultPoint point, int32_t round) override {
    absl::MutexLock lock(&mu_);
    reached_.emplace_back(point, round);
  }
  std::vector<std::pair<FaultPoint, int32_t>> reached() const {
    absl::MutexLock lock(&mu_);
    return reached_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<FaultPoint, int32_t>> reached_ ABSL_GUARDED_BY(mu_);
};

// Every named site is connected; messages are counted per kind.
class FakeRoster : public SiteRoster {
 public:
  explicit FakeRoster(std::vector<std::string> sites) : sites_(std::move(sites)) {}
  std::vector<std::string> ConnectedSites() const override { return sites_; }
  bool Send(const std::string& site, const v1::CoordinatorMessage& message) override {
    sent_.emplace_back(site, message.kind_case());
    if (message.has_train()) last_train_ = message.train();
    return true;
  }
  const v1::TrainTask& last_train() const { return last_train_; }
  int64_t TrainExamples(const std::string&) const override { return 100; }
  int Count(Kind kind) const {
    int count = 0;
    for (const auto& [site, sent] : sent_) count += sent == kind;
    return count;
  }

 private:
  std::vector<std::string> sites_;
  std::vector<std::pair<std::string, Kind>> sent_;
  v1::TrainTask last_train_;
};

class RoundManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(models_, ModelStore::Open(dir_.Join("models")));
    ASSERT_THAT(Env::Default()->CreateDirs(dir_.Join("spool")), IsOk());
  }

  // A one-site run as Federation::StartRun would store it.
  static v1::RunSpec OneSiteSpec(int32_t rounds) {
    v1::RunSpec spec = Spec(rounds, /*min_sites=*/1);
    spec.set_strategy("fedavg");
    return spec;
  }

  // `noise` (optional) draws the coordinator's site-level DP noise.
  RoundManager::Deps TestDeps(privacy::NoiseSource* noise = nullptr) {
    RoundManager::Deps deps{storage_.get(), models_.get(), &clock_, &roster_, ""};
    deps.faults = &faults_;
    deps.dp_noise = noise;
    return deps;
  }

  std::unique_ptr<RoundManager> Load(const v1::RunSpec& spec,
                                     privacy::NoiseSource* noise = nullptr) {
    RunRecord record;
    record.spec = spec;
    absl::StatusOr<int64_t> run = storage_->CreateRun(record);
    EXPECT_THAT(run, IsOk());
    absl::StatusOr<std::unique_ptr<RoundManager>> manager =
        RoundManager::Load(*run, TestDeps(noise));
    EXPECT_THAT(manager, IsOk());
    return manager.ok() ? *std::move(manager) : nullptr;
  }

  absl::Status Upload(RoundManager& manager, int32_t round, const TensorBundle& bundle) {
    ReceivedUpdate update;
    ASSIGN_OR_RETURN(update.path, WriteBundleFile(dir_.Join("spool"), bundle, &update.sha256));
    update.metadata.set_site("site-a");
    update.metadata.set_run_id(manager.run_id());
    update.metadata.set_round(round);
    update.metadata.set_examples(10);
    // What a site running DP-SGD reports; round 0 is the initial model.
    if (round > 0) update.metadata.set_dp_epsilon_spent(reported_epsilon_);
    update.metadata.set_dp_within_clip(within_clip_);
    update.bytes = bundle.body.size();
    return manager.OnUpdate("site-a", std::move(update));
  }

  absl::Status Evaluate(RoundManager& manager, int32_t round) {
    v1::EvalReport report;
    report.set_run_id(manager.run_id());
    report.set_round(round);
    *report.mutable_metrics() = EvalMetrics(20, 0.5, 0.75, 0.8);
    return manager.OnEvalReport("site-a", report);
  }

  ScratchDir dir_;
  std::unique_ptr<Storage> storage_ = NewMemoryStorage();
  std::unique_ptr<ModelStore> models_;
  FakeClock clock_;
  FakeRoster roster_{{"site-a"}};
  RecordingFaultHook faults_;
  double reported_epsilon_ = 0;
  bool within_clip_ = false;
};

TEST_F(RoundManagerTest, EachCrashPointIsReachedOncePerRoundInOrder) {
  std::unique_ptr<RoundManager> manager = Load(OneSiteSpec(/*rounds=*/2));
  ASSERT_NE(manager, nullptr);
  ASSERT_EQ(roster_.Count(Kind::kInit), 1);
  ASSERT_THAT(Upload(*manager, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  EXPECT_THAT(faults_.reached(), ::testing::IsEmpty()) << "round 0 is adopted, not aggregated";

  for (int32_t round = 1; round <= 2; ++round) {
    ASSERT_EQ(manager->phase(), RunPhase::kTraining) << round;
    ASSERT_THAT(Upload(*manager, round, Model({1, 2, 3, 4, 5, 6})), IsOk());
    ASSERT_EQ(manager->phase(), RunPhase::kEvaluating) << round;
    ASSERT_THAT(Evaluate(*manager, round), IsOk());
  }
  EXPECT_TRUE(manager->finished());
  EXPECT_THAT(faults_.reached(), ElementsAre(Pair(FaultPoint::kCoordinatorMidAggregation, 1),
                                             Pair(FaultPoint::kCoordinatorCommit, 1),
                                             Pair(FaultPoint::kCoordinatorEvaluation, 1),
                                             Pair(FaultPoint::kCoordinatorBetweenRounds, 1),
                                             Pair(FaultPoint::kCoordinatorMidAggregation, 2),
                                             Pair(FaultPoint::kCoordinatorCommit, 2),
                                             Pair(FaultPoint::kCoordinatorEvaluation, 2),
                                             Pair(FaultPoint::kCoordinatorBetweenRounds, 2)));
}

TEST_F(RoundManagerTest, WithoutAHookNoPointIsReported) {
  RunRecord record;
  record.spec = OneSiteSpec(/*rounds=*/1);
  ASSERT_OK_AND_ASSIGN(int64_t run, storage_->CreateRun(record));
  RoundManager::Deps deps{storage_.get(), models_.get(), &clock_, &roster_, ""};
  EXPECT_EQ(deps.faults, &NoFaults());
  EXPECT_EQ(deps.env, Env::Default());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RoundManager> manager, RoundManager::Load(run, deps));
  ASSERT_THAT(Upload(*manager, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  ASSERT_THAT(Upload(*manager, 1, Model({1, 2, 3, 4, 5, 6})), IsOk());
  ASSERT_THAT(Evaluate(*manager, 1), IsOk());
  EXPECT_TRUE(manager->finished());
  EXPECT_THAT(faults_.reached(), ::testing::IsEmpty());
}

// Sample-level DP whose noise affords 2 of the 5 planned rounds.
v1::RunSpec SmallBudgetSpec() {
  v1::RunSpec spec = Spec(/*rounds=*/5, /*min_sites=*/1);
  spec.set_strategy("fedavg");
  v1::DpSettings& dp = *spec.mutable_dp();
  dp = CompletedSampleDp(/*noise_multiplier=*/1.0, /*sample_rate=*/0.1, /*steps_per_round=*/10);
  const double after_two = privacy::EpsilonAfterRounds(dp, 2)->epsilon;
  const double after_three = privacy::EpsilonAfterRounds(dp, 3)->epsilon;
  dp.set_target_epsilon((after_two + after_three) / 2);
  return spec;
}

TEST_F(RoundManagerTest, ARunStopsAtItsPrivacyBudgetAndKeepsItsLastModel) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> audit,
                       AuditLog::Open(storage_.get(), &clock_, nullptr));
  const v1::RunSpec spec = SmallBudgetSpec();
  RunRecord record;
  record.spec = spec;
  ASSERT_OK_AND_ASSIGN(int64_t run, storage_->CreateRun(record));
  RoundManager::Deps deps{storage_.get(), models_.get(), &clock_, &roster_, ""};
  deps.audit = audit.get();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RoundManager> manager, RoundManager::Load(run, deps));
  ASSERT_THAT(Upload(*manager, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  // A site that accounts for nothing did not run DP-SGD: its update is refused.
  EXPECT_THAT(Upload(*manager, 1, Model({1, 2, 3, 4, 5, 6})),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::HasSubstr("no differential-privacy accounting")));
  reported_epsilon_ = 0.5;
  for (int32_t round = 1; round <= 2; ++round) {
    ASSERT_THAT(Upload(*manager, round, Model({1, 2, 3, 4, 5, float(round)})), IsOk());
    ASSERT_THAT(Evaluate(*manager, round), IsOk());
  }
  // Round 3 would pass the target: the run ends instead of opening it.
  EXPECT_TRUE(manager->finished());
  EXPECT_EQ(roster_.Count(Kind::kTrain), 2);
  ASSERT_OK_AND_ASSIGN(RunRecord stored, storage_->GetRun(run));
  EXPECT_EQ(stored.state, RunState::kDone);
  EXPECT_THAT(stored.error, ::testing::AllOf(::testing::HasSubstr("privacy budget exhausted"),
                                             ::testing::HasSubstr("round 3 would take epsilon"),
                                             ::testing::HasSubstr("model of round 2")));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  ASSERT_EQ(rounds.size(), 3u) << "rounds 0, 1 and 2; round 2's model is kept";
  EXPECT_THAT(models_->PathFor(rounds.back().model_sha256), IsOk());

  // One privacy.spent entry per committed round, with what an auditor needs
  // to recompute epsilon.
  v1::AuditQuery query;
  query.set_run_id(run);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> entries, audit->List(query));
  std::vector<nlohmann::json> spent;
  for (const v1::AuditEntry& entry : entries) {
    if (entry.action() == audit::ActionName(audit::Action::kPrivacySpent)) {
      spent.push_back(nlohmann::json::parse(entry.detail_json()));
    }
  }
  ASSERT_EQ(spent.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(spent[i]["rounds"], i + 1);
    EXPECT_EQ(spent[i]["steps"], 10);
    EXPECT_EQ(spent[i]["noise_multiplier"], 1.0);
    EXPECT_EQ(spent[i]["sample_rate"], 0.1);
    EXPECT_EQ(spent[i]["clip_norm"], 1.0);
    EXPECT_DOUBLE_EQ(spent[i]["epsilon"].get<double>(),
                     privacy::EpsilonAfterRounds(spec.dp(), i + 1)->epsilon);
  }

  // Run status says the same, per site too.
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> parts, storage_->ListParticipations(run));
  const v1::RunStatus status = StoredRunStatus(stored, rounds, parts);
  EXPECT_EQ(status.privacy().rounds_accounted(), 2);
  EXPECT_TRUE(status.privacy().exhausted());
  EXPECT_DOUBLE_EQ(status.privacy().epsilon_spent(), spent[1]["epsilon"].get<double>());
  ASSERT_EQ(status.privacy().sites_size(), 1);
  EXPECT_EQ(status.privacy().sites(0).site(), "site-a");
  EXPECT_EQ(status.privacy().sites(0).rounds(), 2);
}

// Site-level DP-FedAvg without secure aggregation: the coordinator sees each
// update, refuses one that moves the model by more than S (a site that did
// not clip would spend the others' privacy), and adds N(0, (sigma S)^2) to
// the sum of the clipped changes before dividing by the expected sites.
TEST_F(RoundManagerTest, SiteLevelDpRefusesAnUnclippedUpdateAndNoisesTheSum) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/2);
  *spec.mutable_dp() = CompletedSiteDp(/*clip=*/1.0, /*noise_multiplier=*/0.5, v1::DP_NOISE_CENTRAL,
                                       /*expected_sites=*/1);
  spec.mutable_dp()->set_target_epsilon(100);  // sigma 0.5 alone costs about 9
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(21);
  std::unique_ptr<RoundManager> manager = Load(spec, noise.get());
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  ASSERT_THAT(Upload(*manager, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  reported_epsilon_ = 0.5;
  // Change (3, 4, 0, ...): norm 5, beyond S = 1.
  EXPECT_THAT(Upload(*manager, 1, Model({3, 4, 0, 0, 0, 0})),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("bound of 1")));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  EXPECT_EQ(rounds.size(), 1u) << "nothing of the refused update was committed";
}

TEST_F(RoundManagerTest, SiteLevelDpCommitsTheNoisedMeanOfClippedChanges) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/1);
  *spec.mutable_dp() = CompletedSiteDp(/*clip=*/1.0, /*noise_multiplier=*/0.5, v1::DP_NOISE_CENTRAL,
                                       /*expected_sites=*/2);
  spec.mutable_dp()->set_target_epsilon(100);
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(22);
  std::unique_ptr<RoundManager> manager = Load(spec, noise.get());
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  ASSERT_THAT(Upload(*manager, 0, Model({1, 1, 1, 1, 1, 1})), IsOk());
  reported_epsilon_ = 0.5;
  ASSERT_THAT(Upload(*manager, 1, Model({1.6f, 1.8f, 1, 1, 1, 1})), IsOk());  // norm 1
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  ASSERT_EQ(rounds.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string path, models_->PathFor(rounds.back().model_sha256));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
  // The same draws the coordinator made: sigma S = 0.5 on the sum, over 2.
  std::unique_ptr<privacy::NoiseSource> replay = privacy::MakeSeededNoiseSource(22);
  const std::vector<double> change = {0.6, 0.8, 0, 0, 0, 0};
  const std::vector<float> got = FloatsOf(model);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], 1 + (change[i] + 0.5 * replay->Normal()) / 2, 1e-6) << i;
  }
}

// Adaptive clipping (Andrew et al. 2021): the clip follows a noised count
// of the sites within it, is sent with each round's tasks, bounds the
// round's updates, and survives a restart with the round that fixed it.
TEST_F(RoundManagerTest, AdaptiveClippingMovesTheClipFromANoisedCountAndKeepsIt) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/3);
  v1::DpSettings& dp = *spec.mutable_dp();
  dp = CompletedSiteDp(/*clip=*/1.0, /*noise_multiplier=*/0.5, v1::DP_NOISE_CENTRAL,
                       /*expected_sites=*/1);
  dp.set_target_epsilon(1000);
  dp.set_adaptive_clipping(true);
  dp.set_target_quantile(0.5);
  dp.set_clip_learning_rate(0.2);
  dp.set_clip_count_noise_multiplier(0.5);
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(23);
  std::unique_ptr<RoundManager> manager = Load(spec, noise.get());
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  ASSERT_THAT(Upload(*manager, 0, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_EQ(roster_.last_train().dp_clip_norm(), 1.0) << "round 1 starts at --clip";
  reported_epsilon_ = 0.5;
  within_clip_ = false;  // the site had to clip
  ASSERT_THAT(Upload(*manager, 1, Model({1.6f, 1.8f, 1, 1, 1, 1})), IsOk());
  // The coordinator drew the sum's noise (6 parameters), then the count's.
  std::unique_ptr<privacy::NoiseSource> replay = privacy::MakeSeededNoiseSource(23);
  for (int i = 0; i < 6; ++i) replay->Normal();
  // Centred count: (0 within - 1 contributor / 2 + noise) / 1 site + 1/2.
  const double fraction = (0 - 0.5 + 0.5 * replay->Normal()) / 1 + 0.5;
  const double next = std::exp(-0.2 * (fraction - 0.5));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_DOUBLE_EQ(rounds[1].dp_next_clip_norm, next);
  ASSERT_THAT(Evaluate(*manager, 1), IsOk());
  EXPECT_DOUBLE_EQ(roster_.last_train().dp_clip_norm(), next) << "round 2 uses the new clip";

  // A coordinator restarted during round 2 sends the same clip again.
  manager.reset();
  ASSERT_OK_AND_ASSIGN(manager, RoundManager::Load(run, TestDeps(noise.get())));
  EXPECT_EQ(manager->current_round(), 2);
  EXPECT_DOUBLE_EQ(roster_.last_train().dp_clip_norm(), next);
  // ...and refuses a change beyond it.
  const float beyond = static_cast<float>(1 + 1.01 * next);
  EXPECT_THAT(Upload(*manager, 2, Model({beyond, 1, 1, 1, 1, 1})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace {

absl::Status UploadFrom(RoundManager& manager, const std::string& spool, const std::string& site,
                        int32_t round, const TensorBundle& bundle) {
  ReceivedUpdate update;
  ASSIGN_OR_RETURN(update.path, WriteBundleFile(spool, bundle, &update.sha256));
  update.metadata.set_site(site);
  update.metadata.set_run_id(manager.run_id());
  update.metadata.set_round(round);
  update.metadata.set_examples(10);
  update.bytes = bundle.body.size();
  return manager.OnUpdate(site, std::move(update));
}

// Review finding: MaybeFinishEvaluation strips the per-site score
// histograms before storing, but until the last site reports, the live
// status (admin RunStatus, `fedmi run status --json`) copies each evaluated
// site's eval_metrics verbatim, histogram included: one site's validation
// scores at 1/1000 resolution, which the design says never leaves the
// coordinator's pooling.
TEST_F(RoundManagerTest, LiveStatusShowsNoSitesScoreHistogram) {
  FakeRoster two({"site-a", "site-b"});
  v1::RunSpec spec = Spec(/*rounds=*/1, /*min_sites=*/2);
  spec.set_strategy("fedavg");
  RunRecord record;
  record.spec = spec;
  ASSERT_OK_AND_ASSIGN(int64_t run, storage_->CreateRun(record));
  RoundManager::Deps deps{storage_.get(), models_.get(), &clock_, &two, ""};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RoundManager> manager, RoundManager::Load(run, deps));
  const std::string spool = dir_.Join("spool");
  absl::Status init = UploadFrom(*manager, spool, "site-a", 0, Model({0, 0, 0, 0, 0, 0}));
  if (!init.ok()) init = UploadFrom(*manager, spool, "site-b", 0, Model({0, 0, 0, 0, 0, 0}));
  ASSERT_THAT(init, IsOk());
  ASSERT_THAT(UploadFrom(*manager, spool, "site-a", 1, Model({1, 2, 3, 4, 5, 6})), IsOk());
  ASSERT_THAT(UploadFrom(*manager, spool, "site-b", 1, Model({1, 2, 3, 4, 5, 6})), IsOk());
  ASSERT_EQ(manager->phase(), RunPhase::kEvaluating);
  v1::EvalReport report;
  report.set_run_id(run);
  report.set_round(1);
  *report.mutable_metrics() = EvalMetrics(20, 0.5, 0.75, 0.8);
  for (int b = 0; b < 1000; ++b) {
    report.mutable_metrics()->add_negative_score_counts(b == 3 ? 10 : 0);
    report.mutable_metrics()->add_positive_score_counts(b == 917 ? 10 : 0);
  }
  ASSERT_THAT(manager->OnEvalReport("site-a", report), IsOk());
  ASSERT_EQ(manager->phase(), RunPhase::kEvaluating) << "site-b has not reported yet";
  v1::RunStatus status;
  manager->FillLiveStatus(&status);
  bool found = false;
  for (const v1::RoundStatus& round : status.rounds()) {
    for (const v1::SiteParticipation& part : round.sites()) {
      if (part.site() != "site-a") continue;
      found = true;
      EXPECT_EQ(part.eval_metrics().negative_score_counts_size(), 0);
      EXPECT_EQ(part.eval_metrics().positive_score_counts_size(), 0);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace {

// Transfer learning: a frozen tensor is neither expected nor accepted from
// sites, the new global model keeps its value, and it trains again after
// unfreeze_after_round.
TEST_F(RoundManagerTest, FrozenTensorsAreNotCollectedAndKeepTheirValueUntilUnfrozen) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/2);
  spec.mutable_transfer()->add_freeze_prefixes("fc.w");
  spec.mutable_transfer()->set_unfreeze_after_round(1);
  std::unique_ptr<RoundManager> manager = Load(spec);
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  ASSERT_THAT(Upload(*manager, 0, Model({1, 2, 3, 4, 5, 6})), IsOk());

  v1::UpdateMetadata metadata;
  metadata.set_run_id(run);
  metadata.set_round(1);
  metadata.set_examples(10);
  ASSERT_OK_AND_ASSIGN(ExpectedUpload expected, manager->ExpectedUpdate("site-a", metadata));
  ASSERT_EQ(expected.specs.size(), 1u);
  EXPECT_EQ(expected.specs[0].name, "fc.bias");
  // A full model is not what round 1 collects.
  EXPECT_THAT(Upload(*manager, 1, Model({9, 9, 9, 9, 9, 9})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const TensorBundle bias = FloatBundle({{"fc.bias", DType::kFloat32, {2}}}, {7, 8});
  ASSERT_THAT(Upload(*manager, 1, bias), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  ASSERT_EQ(rounds.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string path, models_->PathFor(rounds.back().model_sha256));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
  EXPECT_EQ(model.specs, ModelSpecs());
  EXPECT_THAT(FloatsOf(model), ElementsAre(1, 2, 3, 4, 7, 8));

  ASSERT_THAT(Evaluate(*manager, 1), IsOk());
  metadata.set_round(2);
  ASSERT_OK_AND_ASSIGN(expected, manager->ExpectedUpdate("site-a", metadata));
  EXPECT_EQ(expected.specs, ModelSpecs());
  ASSERT_THAT(Upload(*manager, 2, Model({0, 1, 0, 1, 0, 1})), IsOk());
  ASSERT_OK_AND_ASSIGN(rounds, storage_->ListRounds(run));
  ASSERT_OK_AND_ASSIGN(path, models_->PathFor(rounds.back().model_sha256));
  ASSERT_OK_AND_ASSIGN(model, ReadBundleFile(path));
  EXPECT_THAT(FloatsOf(model), ElementsAre(0, 1, 0, 1, 0, 1));
}

// A coordinator restart in a frozen round: Federation::Start collects every
// model file no stored round names, the round's trained view included, and
// the reloaded manager must write it again and finish the round.
TEST_F(RoundManagerTest, AFrozenRoundResumesAfterGarbageCollection) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/1);
  spec.mutable_transfer()->add_freeze_prefixes("fc.w");
  std::unique_ptr<RoundManager> manager = Load(spec);
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  ASSERT_THAT(Upload(*manager, 0, Model({1, 2, 3, 4, 5, 6})), IsOk());
  manager.reset();
  ASSERT_OK_AND_ASSIGN(std::set<std::string> referenced, storage_->ReferencedModels());
  ASSERT_OK_AND_ASSIGN(int removed, models_->CollectGarbage(referenced));
  EXPECT_EQ(removed, 1) << "the round's trained view";
  ASSERT_OK_AND_ASSIGN(manager, RoundManager::Load(run, TestDeps()));
  const TensorBundle bias = FloatBundle({{"fc.bias", DType::kFloat32, {2}}}, {7, 8});
  ASSERT_THAT(Upload(*manager, 1, bias), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  ASSERT_EQ(rounds.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string path, models_->PathFor(rounds.back().model_sha256));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
  EXPECT_THAT(FloatsOf(model), ElementsAre(1, 2, 3, 4, 7, 8));
}

// A prefix that names no tensor of the initial model is a mistake the
// admin hears about at once, not a run that silently trains everything.
TEST_F(RoundManagerTest, AFreezePrefixThatNamesNoTensorRefusesTheInitialModel) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/1);
  spec.mutable_transfer()->add_freeze_prefixes("backbone.");
  std::unique_ptr<RoundManager> manager = Load(spec);
  ASSERT_NE(manager, nullptr);
  EXPECT_THAT(Upload(*manager, 0, Model({1, 2, 3, 4, 5, 6})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'backbone.' names no")));
  v1::RunSpec all = OneSiteSpec(/*rounds=*/1);
  all.mutable_transfer()->add_freeze_prefixes("fc");
  manager = Load(all);
  ASSERT_NE(manager, nullptr);
  EXPECT_THAT(Upload(*manager, 0, Model({1, 2, 3, 4, 5, 6})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("every tensor")));
}

// norm_bounded measures each round's changes against that round's global
// model: in round 2 against round 1's aggregate, not the initial model.
TEST_F(RoundManagerTest, NormBoundedScalesEachChangeAgainstTheRoundsGlobalModel) {
  v1::RunSpec spec = OneSiteSpec(/*rounds=*/2);
  spec.set_strategy("norm_bounded");
  spec.mutable_robust()->set_norm_bound(2.5);
  std::unique_ptr<RoundManager> manager = Load(spec);
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  ASSERT_THAT(Upload(*manager, 0, Model({1, 1, 1, 1, 1, 1})), IsOk());
  // Change (3, 4, 0, ...), norm 5: scaled by 0.5.
  ASSERT_THAT(Upload(*manager, 1, Model({4, 5, 1, 1, 1, 1})), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  ASSERT_EQ(rounds.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string path, models_->PathFor(rounds.back().model_sha256));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
  EXPECT_THAT(FloatsOf(model), ElementsAre(2.5f, 3, 1, 1, 1, 1));

  ASSERT_THAT(Evaluate(*manager, 1), IsOk());
  // Change (0, 0, 0, 0, 6, 8) from round 1's model, norm 10: scaled by 0.25.
  ASSERT_THAT(Upload(*manager, 2, Model({2.5f, 3, 1, 1, 7, 9})), IsOk());
  ASSERT_OK_AND_ASSIGN(rounds, storage_->ListRounds(run));
  ASSERT_OK_AND_ASSIGN(path, models_->PathFor(rounds.back().model_sha256));
  ASSERT_OK_AND_ASSIGN(model, ReadBundleFile(path));
  EXPECT_THAT(FloatsOf(model), ElementsAre(2.5f, 3, 1, 1, 2.5f, 3));
}

}  // namespace
}  // namespace fedmi
