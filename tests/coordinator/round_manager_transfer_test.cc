// RoundManager's frozen tensors (round_manager_transfer.cc) in a run with
// site-level DP-FedAvg: the update bound, the central noise and the division
// by the expected sites apply to the trained tensors only, the frozen ones
// come back bit for bit, and the privacy accounting is the same as without
// freezing. The sites are played by the test, including ones that send
// frozen tensors anyway or the other round's subset.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/audit/audit_actions.h"
#include "common/privacy/dp_plan.h"
#include "common/privacy/gaussian_noise.h"
#include "common/tensor/bundle_transfer.h"
#include "coordinator/audit_log.h"
#include "coordinator/round_manager.h"
#include "coordinator/run_status.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

// fc.weight's 16 bytes, which a frozen round must leave as they were.
std::vector<char> FrozenBytes(const TensorBundle& model) {
  absl::StatusOr<TensorBundle> weight = SelectTensors(model, {"fc.weight"});
  EXPECT_THAT(weight, IsOk());
  return weight.ok() ? std::vector<char>(weight->body.begin(), weight->body.end())
                     : std::vector<char>();
}

class RoundManagerTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(models_, ModelStore::Open(dir_.Join("models")));
    ASSERT_THAT(Env::Default()->CreateDirs(dir_.Join("spool")), IsOk());
    ASSERT_OK_AND_ASSIGN(audit_, AuditLog::Open(storage_.get(), &clock_, nullptr));
  }

  // Two rounds of three sites (two suffice), site-level DP with central
  // noise sigma S = 0.5 over expected_sites 2; fc.weight is frozen in
  // round 1 only.
  static v1::RunSpec FrozenSiteDpSpec() {
    v1::RunSpec spec = Spec(/*rounds=*/2, /*min_sites=*/2);
    spec.set_strategy("fedavg");
    spec.mutable_transfer()->add_freeze_prefixes("fc.w");
    spec.mutable_transfer()->set_unfreeze_after_round(1);
    *spec.mutable_dp() = CompletedSiteDp(/*clip=*/1.0, /*noise_multiplier=*/0.5,
                                         v1::DP_NOISE_CENTRAL, /*expected_sites=*/2);
    spec.mutable_dp()->set_target_epsilon(100);  // sigma 0.5 costs about 9 a round
    return spec;
  }

  std::unique_ptr<RoundManager> Load(const v1::RunSpec& spec, privacy::NoiseSource* noise) {
    RunRecord record;
    record.spec = spec;
    absl::StatusOr<int64_t> run = storage_->CreateRun(record);
    EXPECT_THAT(run, IsOk());
    RoundManager::Deps deps{storage_.get(), models_.get(), &clock_, &roster_, ""};
    deps.audit = audit_.get();
    deps.dp_noise = noise;
    absl::StatusOr<std::unique_ptr<RoundManager>> manager =
        RoundManager::Load(run.ok() ? *run : -1, deps);
    EXPECT_THAT(manager, IsOk());
    return manager.ok() ? *std::move(manager) : nullptr;
  }

  // What a site applying the run's DP sends (round 0: the initial model).
  absl::Status Upload(RoundManager& manager, const std::string& site, int32_t round,
                      const TensorBundle& bundle) {
    ReceivedUpdate update;
    ASSIGN_OR_RETURN(update.path, WriteBundleFile(dir_.Join("spool"), bundle, &update.sha256));
    update.metadata.set_site(site);
    update.metadata.set_run_id(manager.run_id());
    update.metadata.set_round(round);
    update.metadata.set_examples(10);
    if (round > 0) update.metadata.set_dp_epsilon_spent(0.5);
    update.bytes = bundle.body.size();
    return manager.OnUpdate(site, std::move(update));
  }

  absl::StatusOr<TensorBundle> CommittedModel(int64_t run, size_t rounds) {
    ASSIGN_OR_RETURN(std::vector<RoundRecord> stored, storage_->ListRounds(run));
    if (stored.size() != rounds) {
      return absl::FailedPreconditionError(
          absl::StrCat(stored.size(), " rounds stored, expected ", rounds));
    }
    ASSIGN_OR_RETURN(std::string path, models_->PathFor(stored.back().model_sha256));
    return ReadBundleFile(path);
  }

  ScratchDir dir_;
  std::unique_ptr<Storage> storage_ = NewMemoryStorage();
  std::unique_ptr<ModelStore> models_;
  std::unique_ptr<AuditLog> audit_;
  FakeClock clock_;
  ConnectedRoster roster_{{"site-a", "site-b", "site-c"}};
};

TEST_F(RoundManagerTransferTest, SiteLevelDpBoundsNoisesAndAveragesOnlyTheTrainedTensors) {
  const v1::RunSpec spec = FrozenSiteDpSpec();
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(31);
  std::unique_ptr<RoundManager> manager = Load(spec, noise.get());
  ASSERT_NE(manager, nullptr);
  const int64_t run = manager->run_id();
  const TensorBundle initial = Model({1, 2, 3, 4, 5, 6});
  ASSERT_THAT(Upload(*manager, "site-a", 0, initial), IsOk());
  ASSERT_EQ(manager->phase(), RunPhase::kTraining);

  // Round 1 trains fc.bias = (5, 6) alone.
  // A site that sends the frozen tensors anyway (unchanged) is refused, and
  // nothing of it reaches the sum.
  EXPECT_THAT(Upload(*manager, "site-c", 1, Model({1, 2, 3, 4, 5.5f, 6})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor #0 is named 'fc.weight', expected 'fc.bias'")));
  // The bound is S over the trained tensors, measured from their global
  // values (5, 6): a change of norm 1.25 is refused and the site leaves the
  // round...
  const auto bias = [](float a, float b) {
    return FloatBundle({{"fc.bias", DType::kFloat32, {2}}}, {a, b});
  };
  EXPECT_THAT(Upload(*manager, "site-c", 1, bias(5 + 0.75f, 6 + 1.0f)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bound of 1")));
  // ...while changes of norm 0.71 (0.5, 0.5) and 0.79 (-0.25, 0.75) are
  // taken (dyadic, so that float32 holds them exactly).
  ASSERT_THAT(Upload(*manager, "site-a", 1, bias(5.5f, 6.5f)), IsOk());
  ASSERT_THAT(Upload(*manager, "site-b", 1, bias(4.75f, 6.75f)), IsOk());
  ASSERT_EQ(manager->phase(), RunPhase::kEvaluating);

  ASSERT_OK_AND_ASSIGN(TensorBundle first, CommittedModel(run, 2));
  EXPECT_EQ(first.specs, ModelSpecs());
  EXPECT_EQ(FrozenBytes(first), FrozenBytes(initial)) << "frozen tensors come back bit for bit";
  // The coordinator's draws, replayed: sigma S = 0.5 on the two trained
  // elements of the sum, divided by the 2 expected sites. Noise drawn for
  // the frozen tensors too would shift this stream (and round 2's below).
  std::unique_ptr<privacy::NoiseSource> replay = privacy::MakeSeededNoiseSource(31);
  const std::vector<double> sum = {0.5 - 0.25, 0.5 + 0.75};
  const std::vector<float> got1 = FloatsOf(first);
  std::vector<double> want1 = {1, 2, 3, 4, 5, 6};
  for (int i = 0; i < 2; ++i) want1[4 + i] += (sum[i] + 0.5 * replay->Normal()) / 2;
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got1[i], want1[i], 1e-5) << "round 1 element " << i;
  std::printf("round 1: fc.weight %g %g %g %g (initial 1 2 3 4), fc.bias %.6f %.6f\n", got1[0],
              got1[1], got1[2], got1[3], got1[4], got1[5]);

  for (const std::string site : {"site-a", "site-b", "site-c"}) {
    v1::EvalReport report;
    report.set_run_id(run);
    report.set_round(1);
    *report.mutable_metrics() = EvalMetrics(20, 0.5, 0.75, 0.8);
    ASSERT_THAT(manager->OnEvalReport(site, report), IsOk()) << site;
  }
  ASSERT_EQ(manager->current_round(), 2);
  ASSERT_EQ(manager->phase(), RunPhase::kTraining);

  // Round 2 trains everything: round 1's subset is the wrong update now.
  const std::vector<float> base(got1.begin(), got1.end());
  EXPECT_THAT(Upload(*manager, "site-a", 2, bias(base[4], base[5])),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor #0 is named 'fc.bias', expected 'fc.weight'")));
  // Each site moves one element by 0.5: fc.weight[0], fc.weight[3], fc.bias[1].
  std::vector<double> sum2(6, 0);
  const std::vector<std::pair<std::string, int>> moves = {
      {"site-a", 0}, {"site-b", 3}, {"site-c", 5}};
  for (const auto& [site, element] : moves) {
    std::vector<float> local = base;
    local[element] += 0.5f;
    sum2[element] += local[element] - base[element];
    ASSERT_THAT(Upload(*manager, site, 2, Model(local)), IsOk()) << site;
  }
  ASSERT_OK_AND_ASSIGN(TensorBundle second, CommittedModel(run, 3));
  const std::vector<float> got2 = FloatsOf(second);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(got2[i], base[i] + (sum2[i] + 0.5 * replay->Normal()) / 2, 1e-5)
        << "round 2 element " << i;
  }

  // The accounting does not see the freezing: one privacy.spent entry per
  // round with the epsilon of 2 contributing sites a round, as any run with
  // these DP settings.
  v1::AuditQuery query;
  query.set_run_id(run);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> entries, audit_->List(query));
  std::vector<nlohmann::json> spent;
  for (const v1::AuditEntry& entry : entries) {
    if (entry.action() == audit::ActionName(audit::Action::kPrivacySpent)) {
      spent.push_back(nlohmann::json::parse(entry.detail_json()));
    }
  }
  ASSERT_EQ(spent.size(), 2u);
  ASSERT_OK_AND_ASSIGN(privacy::PrivacySpent after_one, privacy::EpsilonOfRounds(spec.dp(), {2}));
  ASSERT_OK_AND_ASSIGN(privacy::PrivacySpent after_two,
                       privacy::EpsilonOfRounds(spec.dp(), {2, 3}));
  EXPECT_EQ(spent[0]["contributing_sites"], 2);
  EXPECT_EQ(spent[1]["contributing_sites"], 3);
  EXPECT_EQ(spent[0]["clip_norm"], 1.0);
  EXPECT_DOUBLE_EQ(spent[0]["epsilon"].get<double>(), after_one.epsilon);
  EXPECT_DOUBLE_EQ(spent[1]["epsilon"].get<double>(), after_two.epsilon);
  std::printf("privacy.spent: epsilon %.4f after round 1, %.4f after round 2\n", after_one.epsilon,
              after_two.epsilon);
}

}  // namespace
}  // namespace fedmi
