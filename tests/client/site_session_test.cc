// SiteSession without sockets (site_session_fixture.h): plain rounds, the
// receipt, policy refusals, cancellation, and the failures a site reports.
// Secure rounds are in site_secagg_test.cc.
#include "client/site_session.h"

#include "tests/client/site_session_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(SiteSessionTest, PlainRoundTrainsUploadsKeepsTheReceiptAndReportsEvaluation) {
  Site site("site-2", std::nullopt, {}, dir_.Join("receipts"));
  site.link.SetModel(0, global_);
  const v1::RunSpec spec = SyntheticSpec();
  site.session.Deliver(TrainTask(1, spec));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.uploads().size(), 1u);
  const FakeLink::ReceivedUpload upload = site.link.uploads()[0];
  EXPECT_EQ(upload.metadata.run_id(), kRun);
  EXPECT_EQ(upload.metadata.round(), 1);
  EXPECT_EQ(upload.metadata.site(), "site-2");
  EXPECT_EQ(upload.metadata.examples(), 200);
  const std::vector<float> base = FloatsOf(global_);
  const std::vector<float> trained = FloatsOf(upload.bundle);
  ASSERT_EQ(trained.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) EXPECT_EQ(trained[i], base[i] + 2.0f / 256) << i;
  EXPECT_EQ(site.link.downloads(), 1);
  EXPECT_TRUE(site.link.sent().empty());

  v1::UploadReceipt receipt;
  receipt.set_run_id(kRun);
  receipt.set_round(1);
  receipt.set_site("site-2");
  receipt.set_examples(200);
  receipt.set_signature("signed by the coordinator");
  ASSERT_OK_AND_ASSIGN(std::string kept,
                       Env::Default()->ReadFile(dir_.Join("receipts/run-7-round-1.json")));
  EXPECT_EQ(kept, audit::ReceiptToJson(receipt) + "\n");

  // The synthetic model has nothing to evaluate: no download, an empty report.
  site.session.Deliver(EvalTask(1, spec));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));
  EXPECT_EQ(site.link.downloads(), 1);
  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage report = site.link.sent()[0];
  ASSERT_TRUE(report.has_eval_report());
  EXPECT_EQ(report.eval_report().run_id(), kRun);
  EXPECT_EQ(report.eval_report().round(), 1);
  EXPECT_EQ(report.eval_report().metrics().examples(), 0);
  EXPECT_FALSE(site.session.RunNextTask(absl::ZeroDuration()));
}

// Records what a site reports about its rounds' phases and outcomes.
class PhaseRecorder : public TrainingObserver {
 public:
  void OnTrainingProgress(const TrainingProgress&) override {}
  void OnRoundOutcome(int64_t, int32_t, const absl::Status& outcome) override {
    outcomes.push_back(outcome);
  }
  void OnRoundPhases(int64_t run_id, int32_t round, const RoundPhaseTimes& times) override {
    EXPECT_EQ(run_id, kRun);
    EXPECT_EQ(outcomes.size(), rounds.size()) << "phases come before their round's outcome";
    rounds.push_back(round);
    phases.push_back(times);
  }
  std::vector<int32_t> rounds;
  std::vector<RoundPhaseTimes> phases;
  std::vector<absl::Status> outcomes;
};

TEST_F(SiteSessionTest, CompletedRoundReportsWhereItsTimeWentOnTheSessionClock) {
  PhaseRecorder recorder;
  Site site("site-2", std::nullopt, {}, "", *Env::Default(), &recorder);
  site.link.SetModel(0, global_);
  site.link.SetModel(1, global_);
  site.link.OnTransfer([&site](FakeLink::Transfer transfer) {
    site.clock.Advance(transfer == FakeLink::Transfer::kDownload ? absl::Seconds(2)
                                                                 : absl::Seconds(3));
  });
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));
  ASSERT_EQ(recorder.phases.size(), 1u);
  EXPECT_EQ(recorder.rounds[0], 1);
  EXPECT_DOUBLE_EQ(recorder.phases[0].download, 2);
  EXPECT_DOUBLE_EQ(recorder.phases[0].upload, 3);
  EXPECT_DOUBLE_EQ(recorder.phases[0].training, 0);
  EXPECT_DOUBLE_EQ(recorder.phases[0].secagg, 0);

  // A round whose upload is refused did not complete: no phases.
  site.link.RefuseUploads(absl::FailedPreconditionError("round 2 is closed"));
  site.session.Deliver(TrainTask(2, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));
  EXPECT_EQ(recorder.phases.size(), 1u);
  ASSERT_EQ(recorder.outcomes.size(), 2u);
  EXPECT_FALSE(recorder.outcomes[1].ok());
}

TEST_F(SiteSessionTest, ReceiptThatCannotBeWrittenDoesNotFailTheUpload) {
  FaultInjectionEnv env;
  env.FailCommits(absl::ResourceExhaustedError("No space left on device"));
  Site site("site-3", std::nullopt, {}, dir_.Join("receipts"), env);
  site.link.SetModel(0, global_);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.uploads().size(), 1u);
  EXPECT_EQ(site.link.uploads()[0].metadata.examples(), 300);
  EXPECT_TRUE(site.link.sent().empty());
  EXPECT_EQ(env.commits(), 0);
  EXPECT_FALSE(env.FileExists(dir_.Join("receipts/run-7-round-1.json")));
}

TEST_F(SiteSessionTest, TaskThePolicyForbidsIsRefusedBeforeTheModelIsFetched) {
  SitePolicy policy;
  policy.allowed_models = {"cnn"};
  Site site("site-1", policy);
  site.link.SetModel(0, global_);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_EQ(site.link.downloads(), 0);
  EXPECT_TRUE(site.link.uploads().empty());
  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage refusal = site.link.sent()[0];
  ASSERT_TRUE(refusal.has_refusal());
  EXPECT_EQ(refusal.refusal().run_id(), kRun);
  EXPECT_EQ(refusal.refusal().round(), 1);
  EXPECT_THAT(refusal.refusal().reason(), StartsWith("site policy: "));
  EXPECT_THAT(refusal.refusal().reason(), HasSubstr("synthetic"));
}

TEST_F(SiteSessionTest, CancelledRunIgnoresQueuedAndLateTasks) {
  Site site("site-1", std::nullopt);
  site.link.SetModel(0, global_);
  site.link.SetModel(1, global_);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  site.session.Deliver(Cancel(0));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));
  // A task that arrives after the cancel is ignored as well.
  site.session.Deliver(EvalTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_TRUE(site.link.Untouched());
}

TEST_F(SiteSessionTest, SecureTaskFromAnEndedConnectionIsDroppedWithoutAReport) {
  Site site("site-1", std::nullopt);
  site.link.SetModel(0, global_);
  v1::RoundAdmission admission;  // never looked at: the connection ended first
  *admission.mutable_params() = secagg::ResolveParams(SecAggSettings(), 4, 1000);
  site.session.Deliver(SecureTrainTask(1, admission));
  // The coordinator dropped this site from the round with that connection.
  site.session.Disconnected();
  site.session.Connected();
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_TRUE(site.link.Untouched());
}

TEST_F(SiteSessionTest, UploadTheCoordinatorTurnsDownIsNotReportedAsAFailure) {
  Site site("site-1", std::nullopt);
  site.link.SetModel(0, global_);
  site.link.RefuseUploads(absl::FailedPreconditionError("round 1 is closed"));
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_EQ(site.link.downloads(), 1);
  EXPECT_TRUE(site.link.sent().empty());
}

TEST_F(SiteSessionTest, MissingModelIsReportedAsATaskFailure) {
  Site site("site-1", std::nullopt);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage failure = site.link.sent()[0];
  ASSERT_TRUE(failure.has_failure());
  EXPECT_EQ(failure.failure().round(), 1);
  EXPECT_EQ(failure.failure().reason(), "downloading the model of run 7 round 0: no round 0");
  EXPECT_FALSE(failure.failure().protocol_violation());
}

TEST_F(SiteSessionTest, UnmaskRequestForARoundNeverUploadedIsAFailureNotAReveal) {
  Site site("site-1", std::nullopt);
  v1::CoordinatorMessage request;
  request.mutable_unmask_request()->set_run_id(kRun);
  request.mutable_unmask_request()->set_round(2);
  site.session.Deliver(request);
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage failure = site.link.sent()[0];
  ASSERT_TRUE(failure.has_failure());
  EXPECT_EQ(failure.failure().round(), 2);
  EXPECT_THAT(failure.failure().reason(),
              HasSubstr("holds no secure-aggregation state for run 7 round 2"));
  EXPECT_FALSE(failure.failure().protocol_violation());
}

}  // namespace
}  // namespace fedmi
