// The coordinator SIGKILLed at five points of a round (mid-upload,
// mid-aggregation, during the commit, between rounds, during evaluation) and
// restarted on the same port: each time the run completes, the committed
// rounds are 1..N once each, the model is exactly N FedAvg steps, and the
// audit log verifies. With FedAdam, the resumed run ends bit for bit like an
// uninterrupted one, and so does a SCAFFOLD run.
#include <functional>
#include <nlohmann/json.hpp>

#include "common/tensor/synthetic_model.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

constexpr int kRounds = 3;
constexpr int64_t kParams = 600000;  // 2.4 MB: an upload spans several chunks

// "coordinator-commit" -> "coordinator_commit", a test name.
std::string PointName(const ::testing::TestParamInfo<const char*>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

class CoordinatorCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CoordinatorCrashTest, RunCompletesWithEveryRoundCommittedOnce) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  const std::string point = absl::StrCat(GetParam(), ":2");
  auto coordinator = std::make_unique<CoordinatorProcess>(
      scratch.path(), &project, "127.0.0.1:0", "coordinator.log",
      std::vector<std::string>{absl::StrCat("FEDMI_TEST_CRASH_AT=", point)});
  const std::string address = coordinator->address();
  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (int k = 1; k <= 3; ++k) {
    sites.push_back(StartSyntheticSite(project, address, absl::StrCat("site-", k), scratch.path()));
  }
  ASSERT_THAT(coordinator->admin().WaitForSites(3, absl::Seconds(30)), IsOk());
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(kParams);
  spec.set_rounds(kRounds);
  spec.set_min_sites(3);
  spec.set_round_timeout_s(60);
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator->admin().StartRun(spec));

  // It kills itself at the point, in round 2.
  for (int i = 0; i < 600 && coordinator->process().Running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(coordinator->process().Running()) << point << " was never reached";
  EXPECT_THAT(coordinator->process().LogTail(5),
              ::testing::HasSubstr(absl::StrCat("FEDMI_TEST_CRASH_AT=", point)));
  coordinator.reset();

  coordinator = std::make_unique<CoordinatorProcess>(scratch.path(), &project, address,
                                                     "coordinator-restarted.log");
  const v1::RunStatus final_status = WatchToEnd(coordinator->admin(), run);
  ASSERT_EQ(final_status.state(), "done") << point << ": " << final_status.error();
  ASSERT_EQ(final_status.rounds_size(), kRounds);
  for (int r = 0; r < kRounds; ++r) {
    EXPECT_EQ(final_status.rounds(r).round(), r + 1);
    EXPECT_EQ(final_status.rounds(r).state(), "evaluated");
  }
  std::vector<float> expected = FloatsOf(SyntheticInitialModel(kParams));
  for (int r = 0; r < kRounds; ++r) expected = ExpectedSyntheticAggregate(expected, {1, 2, 3});
  int32_t round = 0;
  ASSERT_OK_AND_ASSIGN(TensorBundle model, coordinator->admin().ExportModel(run, -1, &round));
  EXPECT_EQ(FloatsOf(model), expected) << point;

  // The log holds one aggregation per round, the crash left no hole, and
  // every site's receipt is in it.
  ASSERT_OK_AND_ASSIGN(audit::ExportedLog log, coordinator->admin().FetchAuditLog());
  ASSERT_OK_AND_ASSIGN(std::string ca_pem, ReadFileToString(project.KitFile("admin-1", "ca.pem")));
  EXPECT_THAT(audit::VerifyLog(log.entries, log.head, log.signer_certificate_pem, ca_pem), IsOk())
      << point;
  std::vector<int> aggregated;
  for (const auto& entry : log.entries) {
    if (entry.action() == "round.aggregated" && entry.round() > 0) {
      aggregated.push_back(entry.round());
    }
  }
  EXPECT_EQ(aggregated, (std::vector<int>{1, 2, 3})) << point;
  for (int k = 1; k <= 3; ++k) {
    ASSERT_OK_AND_ASSIGN(auto receipts, audit::ReadReceiptsDir(
                                            project.KitFile(absl::StrCat("site-", k), "receipts")));
    EXPECT_THAT(audit::VerifyReceipts(receipts, log.entries, log.signer_certificate_pem), IsOk())
        << point << " site-" << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Points, CoordinatorCrashTest,
                         ::testing::Values("coordinator-mid-upload", "coordinator-mid-aggregation",
                                           "coordinator-commit", "coordinator-between-rounds",
                                           "coordinator-evaluation"),
                         PointName);

// The final models of a run of `spec` whose coordinator kills itself at
// `point` (then restarts) and of the same run left uninterrupted, on three
// sites that `start_site` starts.
struct ResumedAndUninterrupted {
  TensorBundle resumed;
  TensorBundle uninterrupted;
};

void RunCrashedAndUninterrupted(
    const v1::RunSpec& spec, const std::string& point,
    const std::function<std::unique_ptr<cli::ChildProcess>(TestProject&, const std::string&,
                                                           const std::string&, int)>& start_site,
    ResumedAndUninterrupted* models) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  auto coordinator = std::make_unique<CoordinatorProcess>(
      scratch.path(), &project, "127.0.0.1:0", "coordinator.log",
      std::vector<std::string>{absl::StrCat("FEDMI_TEST_CRASH_AT=", point)});
  const std::string address = coordinator->address();
  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (int k = 1; k <= 3; ++k) sites.push_back(start_site(project, address, scratch.path(), k));
  ASSERT_THAT(coordinator->admin().WaitForSites(3, absl::Seconds(60)), IsOk());
  ASSERT_OK_AND_ASSIGN(int64_t crashed_run, coordinator->admin().StartRun(spec));
  for (int i = 0; i < 2400 && coordinator->process().Running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(coordinator->process().Running()) << point << " was never reached";
  coordinator.reset();

  coordinator = std::make_unique<CoordinatorProcess>(scratch.path(), &project, address,
                                                     "coordinator-restarted.log");
  const v1::RunStatus crashed_status = WatchToEnd(coordinator->admin(), crashed_run);
  ASSERT_EQ(crashed_status.state(), "done") << point << ": " << crashed_status.error();
  ASSERT_OK_AND_ASSIGN(int64_t uninterrupted_run, coordinator->admin().StartRun(spec));
  const v1::RunStatus uninterrupted_status = WatchToEnd(coordinator->admin(), uninterrupted_run);
  ASSERT_EQ(uninterrupted_status.state(), "done") << uninterrupted_status.error();

  int32_t round = 0;
  ASSERT_OK_AND_ASSIGN(models->resumed, coordinator->admin().ExportModel(crashed_run, -1, &round));
  EXPECT_EQ(round, spec.rounds());
  ASSERT_OK_AND_ASSIGN(models->uninterrupted,
                       coordinator->admin().ExportModel(uninterrupted_run, -1, &round));
}

// A server optimizer's state is committed with each round: a run of
// FedAdam killed mid-aggregation or during the commit ends with the model,
// bit for bit, of the same run left uninterrupted.
class CoordinatorCrashServerOptimizerTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CoordinatorCrashServerOptimizerTest, FedAdamResumesExactly) {
  v1::RunSpec spec = SyntheticSpec(kParams, kRounds, /*min_sites=*/3);
  spec.mutable_server_optimizer()->set_kind("fedadam");
  ResumedAndUninterrupted models;
  RunCrashedAndUninterrupted(
      spec, absl::StrCat(GetParam(), ":2"),
      [](TestProject& project, const std::string& address, const std::string& dir, int k) {
        return StartSyntheticSite(project, address, absl::StrCat("site-", k), dir);
      },
      &models);
  ASSERT_FALSE(models.resumed.body.empty());
  EXPECT_TRUE(models.resumed.body == models.uninterrupted.body)
      << GetParam() << ": the resumed model differs";
  // FedAdam moved the model: it is not FedAvg's.
  std::vector<float> fedavg = FloatsOf(SyntheticInitialModel(kParams));
  for (int r = 0; r < kRounds; ++r) fedavg = ExpectedSyntheticAggregate(fedavg, {1, 2, 3});
  EXPECT_NE(FloatsOf(models.resumed), fedavg);
}

INSTANTIATE_TEST_SUITE_P(Points, CoordinatorCrashServerOptimizerTest,
                         ::testing::Values("coordinator-mid-aggregation", "coordinator-commit"),
                         PointName);

// SCAFFOLD's site control variates live at the sites and its server one in
// the global model: a run killed while it commits round 2, which the sites
// have trained and saved their new control variates for, trains round 2
// again from the control variates of round 1 and ends bit for bit like the
// same run left uninterrupted. The sites train a CNN on data of
// their own.
TEST(CoordinatorCrashScaffoldTest, ScaffoldResumesExactly) {
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_rounds(kRounds);
  spec.set_min_sites(3);
  spec.set_round_timeout_s(120);
  spec.set_optimizer("sgd");
  spec.set_lr(0.05);
  spec.set_seed(3);
  spec.set_scaffold(true);
  ResumedAndUninterrupted models;
  RunCrashedAndUninterrupted(
      spec, "coordinator-commit:2",
      [](TestProject& project, const std::string& address, const std::string& dir, int k) {
        const std::string name = absl::StrCat("site-", k);
        project.Add(name, PartyRole::kSite);
        cli::SiteOptions options;
        options.name = name;
        options.threads = 1;
        options.log_path = absl::StrCat(dir, "/", name, ".log");
        options.data = WriteSyntheticNpz(absl::StrCat(dir, "/", name, ".npz"), 10 + k);
        return StartSite(project, address, options);
      },
      &models);
  ASSERT_FALSE(models.resumed.body.empty());
  EXPECT_TRUE(models.resumed.body == models.uninterrupted.body) << "the resumed model differs";
  // The server control variate moved away from zero.
  ASSERT_EQ(models.resumed.specs.back().name.rfind("scaffold.control/", 0), 0u);
  const std::vector<float> values = FloatsOf(models.resumed);
  EXPECT_NE(values.back(), 0.0f);
}

}  // namespace
}  // namespace fedmi
