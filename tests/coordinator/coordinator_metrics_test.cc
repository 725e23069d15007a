// The coordinator's /metrics text for known Federation states, checked line
// by line against values worked out by hand.
#include "coordinator/coordinator_metrics.h"

#include "coordinator/audit_log.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CoordinatorMetricsTest : public FederationTest {
 protected:
  void SetUp() override {
    FederationTest::SetUp();
    ASSERT_OK_AND_ASSIGN(transfer_,
                         RegisterCoordinatorMetrics(federation_.get(), storage_.get(), &registry_));
  }
  std::string Render() const { return registry_.RenderText(); }

  metrics::MetricRegistry registry_;
  CoordinatorTransferMetrics transfer_;
};

TEST_F(CoordinatorMetricsTest, AnEmptyCoordinatorReportsZerosAndNoRuns) {
  EXPECT_EQ(Render(),
            "# HELP fedmi_coordinator_audit_entries_total Entries in the audit log.\n"
            "# TYPE fedmi_coordinator_audit_entries_total counter\n"
            "fedmi_coordinator_audit_entries_total 0\n"
            "# HELP fedmi_coordinator_phase_seconds_total Thread-seconds the update path spent "
            "per phase since the coordinator started (uploads overlap, so phases may sum to "
            "more than wall time).\n"
            "# TYPE fedmi_coordinator_phase_seconds_total counter\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"check\"} 0\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"commit\"} 0\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"fold\"} 0\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"hash\"} 0\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"model_send\"} 0\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"receive\"} 0\n"
            "fedmi_coordinator_phase_seconds_total{phase=\"spool\"} 0\n"
            "# HELP fedmi_coordinator_runs Runs by state; every state is listed.\n"
            "# TYPE fedmi_coordinator_runs gauge\n"
            "fedmi_coordinator_runs{state=\"aborted\"} 0\n"
            "fedmi_coordinator_runs{state=\"done\"} 0\n"
            "fedmi_coordinator_runs{state=\"failed\"} 0\n"
            "fedmi_coordinator_runs{state=\"pending\"} 0\n"
            "fedmi_coordinator_runs{state=\"running\"} 0\n"
            "# HELP fedmi_coordinator_sent_bytes_total Bytes of models the coordinator streamed "
            "since it started: global models to sites (model_download), exports to admins "
            "(model_export).\n"
            "# TYPE fedmi_coordinator_sent_bytes_total counter\n"
            "fedmi_coordinator_sent_bytes_total{stream=\"model_download\"} 0\n"
            "fedmi_coordinator_sent_bytes_total{stream=\"model_export\"} 0\n"
            "# HELP fedmi_coordinator_sites_connected Sites with an open control stream.\n"
            "# TYPE fedmi_coordinator_sites_connected gauge\n"
            "fedmi_coordinator_sites_connected 0\n"
            "# HELP fedmi_coordinator_sites_known Sites ever registered, revoked ones included.\n"
            "# TYPE fedmi_coordinator_sites_known gauge\n"
            "fedmi_coordinator_sites_known 0\n"
            "# HELP fedmi_coordinator_sites_revoked Sites revoked by an admin.\n"
            "# TYPE fedmi_coordinator_sites_revoked gauge\n"
            "fedmi_coordinator_sites_revoked 0\n"
            "# HELP fedmi_coordinator_updates_accepted_total Site updates the coordinator took, "
            "initial models included (audit update.received).\n"
            "# TYPE fedmi_coordinator_updates_accepted_total counter\n"
            "fedmi_coordinator_updates_accepted_total 0\n"
            "# HELP fedmi_coordinator_updates_received_bytes_total Bytes of the site updates the "
            "coordinator took.\n"
            "# TYPE fedmi_coordinator_updates_received_bytes_total counter\n"
            "fedmi_coordinator_updates_received_bytes_total 0\n");
}

TEST_F(CoordinatorMetricsTest, SitesAreCountedByConnectionAndRevocation) {
  Connect("site-a");
  Connect("site-b");
  Connect("site-c");
  Disconnect("site-b");
  ASSERT_THAT(federation_->RevokeSite(Admin(), "site-c", "laptop lost"), IsOk());
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_sites_known 3\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_sites_connected 1\n"))
      << "site-b left, site-c's stream closed on revocation";
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_sites_revoked 1\n"));
}

TEST_F(CoordinatorMetricsTest, UnfinishedRunsReportRoundPhaseAndPooledAuc) {
  const int64_t trained = StartTraining(Spec(/*rounds=*/3, /*min_sites=*/2), {"site-a", "site-b"});
  ASSERT_EQ(trained, 1);
  const int64_t waiting = StartRun(Spec(1, 5));
  ASSERT_EQ(waiting, 2);
  const int64_t aborted = StartRun(Spec(1, 5));
  ASSERT_THAT(federation_->AbortRun(Admin(), aborted, "wrong spec"), IsOk());

  std::string text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_runs{state=\"aborted\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_runs{state=\"running\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_runs{state=\"done\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_current_round{run=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_current_round{run=\"2\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_completed_rounds{run=\"1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_phase{run=\"1\",phase=\"training\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_phase{run=\"1\",phase=\"evaluating\"} 0\n"));
  EXPECT_THAT(
      text, HasSubstr("\nfedmi_coordinator_run_phase{run=\"2\",phase=\"waiting-for-sites\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("run=\"3\""))) << "a finished run has no series";
  EXPECT_THAT(text, Not(HasSubstr("fedmi_coordinator_run_validation_auc")))
      << "nothing is evaluated yet";

  // Round 1: both updates, then the evaluations; AUC is example-weighted:
  // (10 * 0.5 + 30 * 0.75) / 40 = 0.6875.
  ASSERT_THAT(Upload("site-a", trained, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_THAT(Upload("site-b", trained, 1, Model({3, 3, 3, 3, 3, 3})), IsOk());
  text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_phase{run=\"1\",phase=\"evaluating\"} 1\n"))
      << "a change of the Federation is seen by the next render";
  ASSERT_THAT(Report("site-a", trained, 1, EvalMetrics(10, 1.0, 0.5, 0.5)), IsOk());
  ASSERT_THAT(Report("site-b", trained, 1, EvalMetrics(30, 1.0, 0.5, 0.75)), IsOk());

  text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_current_round{run=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_completed_rounds{run=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_phase{run=\"1\",phase=\"training\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_run_validation_auc{run=\"1\"} 0.6875\n"));
  EXPECT_THAT(text, Not(HasSubstr("fedmi_coordinator_run_validation_auc{run=\"2\"}")));
}

TEST_F(CoordinatorMetricsTest, AuditEntriesAreTheLogsLength) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> audit,
                       AuditLog::Open(storage_.get(), &clock_, nullptr));
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(
        audit->Append("alice", audit::Action::kRunStarted, i + 1, -1, nlohmann::json::object())
            .status(),
        IsOk());
  }
  EXPECT_THAT(Render(), HasSubstr("\nfedmi_coordinator_audit_entries_total 3\n"));
}

// A Federation that records its events in an (unsigned) audit log.
class AuditedMetricsTest : public CoordinatorMetricsTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(audit_, AuditLog::Open(storage_.get(), &clock_, nullptr));
    options_.audit = audit_.get();
    CoordinatorMetricsTest::SetUp();
  }
  std::unique_ptr<AuditLog> audit_;
};

TEST_F(AuditedMetricsTest, UpdatesAreCountedFromTheAuditLog) {
  // The initial model and round 1's two updates: 6 float32 each, 24 bytes.
  const int64_t run = StartTraining(Spec(2, 2), {"site-a", "site-b"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  std::string text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_accepted_total 2\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_received_bytes_total 48\n"));
  EXPECT_THAT(text, Not(HasSubstr("fedmi_coordinator_updates_refused_total")));

  // A second update of site-a in round 1, one for a round not open, and one
  // whose values the transport refused.
  EXPECT_FALSE(federation_->OpenUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 1)).ok());
  EXPECT_FALSE(federation_->OpenUpload(SiteCaller("site-b"), Metadata("site-b", run, 5, 1)).ok());
  federation_->RecordUploadRefused(SiteCaller("site-b"), Metadata("site-b", run, 1, 1),
                                   absl::InvalidArgumentError("nan in tensor 'fc.weight'"));
  ASSERT_THAT(Upload("site-b", run, 1, Model({3, 3, 3, 3, 3, 3})), IsOk());

  text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_accepted_total 3\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_received_bytes_total 72\n"));
  EXPECT_THAT(text,
              HasSubstr("\nfedmi_coordinator_updates_refused_total{code=\"already_exists\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("\nfedmi_coordinator_updates_refused_total{code=\"failed_precondition\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("\nfedmi_coordinator_updates_refused_total{code=\"invalid_argument\"} 1\n"));
  ASSERT_OK_AND_ASSIGN(int64_t entries, storage_->CountAudit());
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("\nfedmi_coordinator_audit_entries_total ", entries, "\n")));
}

TEST_F(AuditedMetricsTest, RoundDurationsRunFromOpeningToEvaluation) {
  const int64_t run = StartTraining(Spec(/*rounds=*/3, /*min_sites=*/2), {"site-a", "site-b"});
  clock_.Advance(absl::Seconds(42));
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_THAT(Upload("site-b", run, 1, Model({3, 3, 3, 3, 3, 3})), IsOk());
  EXPECT_THAT(Render(), Not(HasSubstr("fedmi_coordinator_round_duration_seconds")))
      << "round 1 is not evaluated yet";
  clock_.Advance(absl::Seconds(3));
  ASSERT_THAT(Report("site-a", run, 1, EvalMetrics(10, 1.0, 0.5, 0.5)), IsOk());
  ASSERT_THAT(Report("site-b", run, 1, EvalMetrics(30, 1.0, 0.5, 0.75)), IsOk());
  // Round 2 opens at once; the abort cuts it short, so only round 1's 45 s
  // are observed.
  clock_.Advance(absl::Seconds(7));
  ASSERT_THAT(federation_->AbortRun(Admin(), run, "enough"), IsOk());
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_round_duration_seconds_bucket{outcome="
                              "\"evaluated\",le=\"30\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_round_duration_seconds_bucket{outcome="
                              "\"evaluated\",le=\"60\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_round_duration_seconds_sum{outcome="
                              "\"evaluated\"} 45\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_round_duration_seconds_count{outcome="
                              "\"evaluated\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("outcome=\"failed\"")));
  EXPECT_EQ(Render(), text) << "a render without new entries observes nothing again";
}

// More entries than one page of the audit log: all are read, each once.
TEST_F(CoordinatorMetricsTest, ALongAuditLogIsTalliedInPages) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> audit,
                       AuditLog::Open(storage_.get(), &clock_, nullptr));
  for (int i = 0; i < 2345; ++i) {
    ASSERT_THAT(
        audit->Append("site-a", audit::Action::kUpdateReceived, 1, 1, {{"bytes", 10}}).status(),
        IsOk());
  }
  std::string text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_accepted_total 2345\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_received_bytes_total 23450\n"));
  ASSERT_THAT(
      audit->Append("site-a", audit::Action::kUpdateReceived, 1, 2, {{"bytes", 5}}).status(),
      IsOk());
  text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_accepted_total 2346\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_updates_received_bytes_total 23455\n"));
}

// A round whose failure ends its run (no retries left, the default) is
// recorded as run.finished with state failed, not round.failed: it is a
// failed round all the same, the one an operator most wants counted. An
// abort still cuts its round short unobserved.
TEST_F(CoordinatorMetricsTest, ARoundThatFailsItsRunIsObservedAsFailed) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> audit,
                       AuditLog::Open(storage_.get(), &clock_, nullptr));
  const auto append = [&](audit::Action action, int64_t run, int32_t round, nlohmann::json detail) {
    ASSERT_THAT(audit->Append("coordinator", action, run, round, std::move(detail)).status(),
                IsOk());
  };
  append(audit::Action::kRoundOpened, 1, 3, nlohmann::json::object());
  append(audit::Action::kRoundOpened, 2, 1, nlohmann::json::object());
  clock_.Advance(absl::Seconds(20));
  append(audit::Action::kRunFinished, 1, 3, {{"state", "failed"}, {"error", "quorum"}});
  clock_.Advance(absl::Seconds(5));
  append(audit::Action::kRunFinished, 2, 1, {{"state", "aborted"}, {"error", "enough"}});
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_round_duration_seconds_sum{outcome="
                              "\"failed\"} 20\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_round_duration_seconds_count{outcome="
                              "\"failed\"} 1\n"));
}

TEST_F(CoordinatorMetricsTest, SentBytesAreCountedPerStream) {
  CountSentBytes(&transfer_, SentStream::kModelDownload, 1000);
  CountSentBytes(&transfer_, SentStream::kModelDownload, 24);
  CountSentBytes(&transfer_, SentStream::kModelExport, 7);
  CountSentBytes(nullptr, SentStream::kModelExport, 99);  // no metrics served: nothing
  const std::string text = Render();
  EXPECT_THAT(text,
              HasSubstr("\nfedmi_coordinator_sent_bytes_total{stream=\"model_download\"} 1024\n"));
  EXPECT_THAT(text, HasSubstr("\nfedmi_coordinator_sent_bytes_total{stream=\"model_export\"} 7\n"));
}

TEST_F(CoordinatorMetricsTest, RegisteringTwiceIsRefused) {
  EXPECT_EQ(
      RegisterCoordinatorMetrics(federation_.get(), storage_.get(), &registry_).status().code(),
      absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace fedmi
