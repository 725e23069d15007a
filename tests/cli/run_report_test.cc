#include "cli/run_report.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kModel1(32, '\x11');
const std::string kModel2(32, '\x22');
const std::string kModel1Hex(64, '1');
const std::string kModel2Hex(64, '2');
const std::string kSpecHex = "ab" + std::string(62, '0');

v1::Metrics EvalMetrics(double auc, double accuracy, double sensitivity, double specificity) {
  v1::Metrics metrics;
  metrics.set_examples(200);
  metrics.set_auc(auc);
  metrics.set_accuracy(accuracy);
  metrics.set_sensitivity(sensitivity);
  metrics.set_specificity(specificity);
  return metrics;
}

// Run 7: three sites, secure aggregation on, two rounds; site-c drops out
// of round 2.
v1::RunStatus SampleRun() {
  v1::RunStatus run;
  run.set_run_id(7);
  run.set_state("done");
  run.set_completed_rounds(2);
  std::string spec_sha256 = "\xab";
  spec_sha256.resize(32, '\0');
  run.set_spec_sha256(spec_sha256);
  v1::RunSpec& spec = *run.mutable_spec();
  spec.set_model("cnn");
  spec.set_strategy("fedavg");
  spec.set_rounds(2);
  spec.set_min_sites(3);
  spec.set_local_epochs(1);
  spec.set_batch_size(64);
  spec.set_lr(0.001);
  spec.set_optimizer("adam");
  spec.set_num_classes(2);
  spec.set_secure_aggregation(true);
  spec.mutable_secagg()->set_threshold(2);
  spec.mutable_secagg()->set_clip(0.5);

  v1::RoundStatus& round1 = *run.add_rounds();
  round1.set_round(1);
  round1.set_state("evaluated");
  round1.set_model_sha256(kModel1);
  *round1.mutable_eval_metrics() = EvalMetrics(0.8123, 0.75, 0.7, 0.8);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    round1.add_sites()->set_site(site);
  }
  v1::RoundStatus& round2 = *run.add_rounds();
  round2.set_round(2);
  round2.set_state("evaluated");
  round2.set_model_sha256(kModel2);
  *round2.mutable_eval_metrics() = EvalMetrics(0.9, 0.85, 0.8, 0.9);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    v1::SiteParticipation& part = *round2.add_sites();
    part.set_site(site);
    part.set_state("evaluated");
  }
  round2.mutable_sites(2)->set_state("dropped");
  round2.mutable_sites(2)->set_detail("timeout");
  return run;
}

v1::AuditEntry Entry(int64_t seq, const std::string& actor, const std::string& action,
                     int32_t round, const std::string& detail) {
  v1::AuditEntry entry;
  entry.set_seq(seq);
  entry.set_time(absl::StrCat("2026-11-28T10:00:", seq < 10 ? "0" : "", seq, ".000000Z"));
  entry.set_actor(actor);
  entry.set_action(action);
  entry.set_run_id(7);
  entry.set_round(round);
  entry.set_detail_json(detail);
  return entry;
}

std::vector<v1::AuditEntry> SampleEntries() {
  const std::string update = R"({"bytes":10,"examples":100,"sha256":"ff","site":")";
  return {
      Entry(3, "admin-alice", "run.started", -1,
            absl::StrCat(R"({"by":"admin-alice","model":"cnn","secure_aggregation":true,)",
                         R"("spec_sha256":")", kSpecHex, R"("})")),
      Entry(4, "coordinator", "round.opened", 1,
            R"({"secure_aggregation":true,"sites":["site-a","site-b","site-c"]})"),
      Entry(5, "site-a", "update.received", 1, update + R"(site-a"})"),
      Entry(6, "site-b", "update.received", 1, update + R"(site-b"})"),
      Entry(7, "site-c", "update.received", 1, update + R"(site-c"})"),
      Entry(8, "coordinator", "round.aggregated", 1,
            absl::StrCat(R"({"model_sha256":")", kModel1Hex, R"(","sites":["site-a"]})")),
      Entry(9, "coordinator", "round.opened", 2,
            R"({"secure_aggregation":true,"sites":["site-a","site-b","site-c"]})"),
      Entry(10, "site-a", "update.received", 2, update + R"(site-a"})"),
      Entry(11, "site-b", "update.received", 2, update + R"(site-b"})"),
      Entry(12, "coordinator", "site.dropped", 2, R"({"reason":"timeout","site":"site-c"})"),
      Entry(13, "coordinator", "round.aggregated", 2,
            absl::StrCat(R"({"model_sha256":")", kModel2Hex, R"(","sites":["site-a"]})")),
      Entry(14, "coordinator", "run.finished", -1, R"({"error":"","state":"done"})"),
      Entry(15, "admin-bob", "model.exported", 2,
            absl::StrCat(R"({"model_sha256":")", kModel2Hex, R"(","round":2})")),
  };
}

TEST(RunReportTest, NamesWhoStartedTheRunAndTheSpecHash) {
  const std::string report = RenderRunReport(SampleRun(), SampleEntries());
  EXPECT_THAT(report, HasSubstr("# Audit report: federated training run 7\n"));
  EXPECT_THAT(report, HasSubstr("- **State:** done, 2 of 2 rounds completed\n"));
  EXPECT_THAT(
      report,
      HasSubstr("- **Started by:** `admin-alice` at 2026-11-28 10:00:03 UTC (audit seq 3)"));
  EXPECT_THAT(report, HasSubstr(absl::StrCat("- **Spec SHA-256:** `", kSpecHex, "`\n")));
  EXPECT_THAT(report, Not(HasSubstr("Disagreements"))) << report;
}

TEST(RunReportTest, StatesThePrivacySettings) {
  const std::string report = RenderRunReport(SampleRun(), SampleEntries());
  EXPECT_THAT(report, HasSubstr("- **Secure aggregation:** on (threshold 2, complete graph, clip "
                                "0.5), examples per site capped at the largest site's training "
                                "set."));
  EXPECT_THAT(report, HasSubstr("- **Differential privacy:** off\n"));

  v1::RunStatus plain = SampleRun();
  plain.mutable_spec()->set_secure_aggregation(false);
  plain.mutable_spec()->clear_secagg();
  EXPECT_THAT(RenderRunReport(plain, {}),
              HasSubstr("- **Secure aggregation:** off. The coordinator receives each site's "
                        "model update in the clear.\n"));
}

TEST(RunReportTest, ShowsTheEpsilonSpentRoundByRoundFromTheLog) {
  v1::RunStatus run = SampleRun();
  *run.mutable_spec()->mutable_dp() = CompletedSampleDp(1.25, 0.08, 13);
  v1::PrivacyBudget& budget = *run.mutable_privacy();
  budget.set_target_epsilon(8);
  budget.set_delta(1e-5);
  budget.set_epsilon_spent(2.5);
  budget.set_rounds_accounted(2);
  v1::SitePrivacy& site = *budget.add_sites();
  site.set_site("site-c");
  site.set_rounds(1);
  site.set_epsilon(1.75);
  std::vector<v1::AuditEntry> entries = SampleEntries();
  auto spent = [](const char* epsilon, int rounds) {
    return absl::StrCat(R"({"clip_norm":1.0,"delta":1e-05,"epsilon":)", epsilon,
                        R"(,"level":"sample","noise_multiplier":1.25,"rounds":)", rounds,
                        R"(,"sample_rate":0.08,"steps":13,"target_epsilon":8.0})");
  };
  entries.push_back(Entry(16, "coordinator", "privacy.spent", 1, spent("1.75", 1)));
  entries.push_back(Entry(17, "coordinator", "privacy.spent", 2, spent("2.5", 2)));
  const std::string report = RenderRunReport(run, entries);
  EXPECT_THAT(report, HasSubstr("- **Differential privacy:** sample level (DP-SGD at each site), "
                                "target epsilon 8 at delta 1e-05"));
  EXPECT_THAT(report, HasSubstr("- **Spent:** epsilon 2.5 of the target 8 at delta 1e-05 after 2 "
                                "committed round(s).\n"));
  EXPECT_THAT(report, HasSubstr("- **Per site** (each over the rounds its update is in): "
                                "`site-c` 1.75 (1 rounds).\n"));
  EXPECT_THAT(report, HasSubstr("| 1 | 1.75 | 1.25 | 1.0 | 0.08 | 13 | audit seq 16 |\n"));
  EXPECT_THAT(report, HasSubstr("| 2 | 2.5 | 1.25 | 1.0 | 0.08 | 13 | audit seq 17 |\n"));
  EXPECT_THAT(RenderRunReport(SampleRun(), SampleEntries()), Not(HasSubstr("Privacy budget")));
}

// Site level: who was in the sum, and the noise the round really had.
TEST(RunReportTest, ShowsTheSitesInTheSumForSiteLevelDp) {
  v1::RunStatus run = SampleRun();
  *run.mutable_spec()->mutable_dp() = CompletedSiteDp(1.0, 2.0, v1::DP_NOISE_DISTRIBUTED, 20);
  run.mutable_privacy()->set_target_epsilon(8);
  run.mutable_privacy()->set_delta(1e-5);
  run.mutable_privacy()->set_epsilon_spent(1.9);
  run.mutable_privacy()->set_rounds_accounted(1);
  std::vector<v1::AuditEntry> entries = SampleEntries();
  entries.push_back(Entry(16, "coordinator", "privacy.spent", 1,
                          R"({"clip_norm":1.0,"contributing_sites":20,"delta":1e-05,)"
                          R"("epsilon":1.9,"expected_sites":20,"level":"site",)"
                          R"("noise_multiplier":2.0,"noise_placement":"distributed",)"
                          R"("round_noise_multiplier":2.0,"rounds":1,"sample_rate":1.0,)"
                          R"("steps":1,"target_epsilon":8.0})"));
  const std::string report = RenderRunReport(run, entries);
  EXPECT_THAT(report,
              HasSubstr("| Steps | Sites in the sum | Round noise multiplier | Audit entry |\n"
                        "|---|---|---|---|---|---|---|---|---|\n"));
  EXPECT_THAT(report, HasSubstr("| 1 | 1.9 | 2.0 | 1.0 | 1.0 | 1 | 20 | 2.0 | audit seq 16 |\n"));
}

TEST(RunReportTest, HasOneRowPerRoundWithMetricsAndModelHash) {
  const std::string report = RenderRunReport(SampleRun(), SampleEntries());
  EXPECT_THAT(report, HasSubstr(absl::StrCat("| 1 | evaluated | 3 | 0.8123 | 0.7500 | 0.7000 | "
                                             "0.8000 | `",
                                             kModel1Hex, "` |\n")))
      << report;
  EXPECT_THAT(report, HasSubstr(absl::StrCat(
                          "| 2 | evaluated | 3 (1 dropped or refused) | 0.9000 | 0.8500 | "
                          "0.8000 | 0.9000 | `",
                          kModel2Hex, "` |\n")))
      << report;
}

TEST(RunReportTest, CountsEachSitesUpdatesAndListsTheDrop) {
  const std::string report = RenderRunReport(SampleRun(), SampleEntries());
  EXPECT_THAT(report, HasSubstr("| `site-a` | 1, 2 | 2 | 200 | 0 | 0 |\n")) << report;
  EXPECT_THAT(report, HasSubstr("| `site-c` | 1, 2 | 1 | 100 | 1 | 0 |\n")) << report;
  EXPECT_THAT(report, HasSubstr("- Round 2, 2026-11-28 10:00:12 UTC: site `site-c` was dropped: "
                                "timeout (audit seq 12)\n"));
  // The status's record of the same drop is not listed a second time.
  EXPECT_THAT(report, Not(HasSubstr("run status only")));
  EXPECT_THAT(report, HasSubstr(absl::StrCat("the round 2 model was exported by `admin-bob`, "
                                             "SHA-256 `",
                                             kModel2Hex, "` (audit seq 15)")));
}

TEST(RunReportTest, WorksFromTheRunStatusAloneWhenTheLogIsEmpty) {
  const std::string report = RenderRunReport(SampleRun(), {});
  EXPECT_THAT(report, HasSubstr("- **Started by:** unknown: the audit log has no run.started"));
  EXPECT_THAT(report, HasSubstr("- Round 2, site `site-c` dropped: timeout (run status only; "
                                "not in the audit log)\n"));
  EXPECT_THAT(report, HasSubstr(absl::StrCat("`", kModel2Hex, "` |\n")));
  EXPECT_THAT(report, HasSubstr("the audit log holds no entries about run 7"));
}

TEST(RunReportTest, ReportsWhereTheStatusAndTheLogDisagree) {
  std::vector<v1::AuditEntry> entries = SampleEntries();
  entries[5].set_detail_json(absl::StrCat(R"({"model_sha256":")", std::string(64, '9'), R"("})"));
  const std::string report = RenderRunReport(SampleRun(), entries);
  EXPECT_THAT(report, HasSubstr("## Disagreements between the run status and the audit log"));
  EXPECT_THAT(report, HasSubstr(absl::StrCat("Round 1: the run status gives model SHA-256 `",
                                             kModel1Hex, "` but the log recorded `",
                                             std::string(64, '9'), "` (audit seq 8)")));
}

TEST(RunReportTest, EndsWithHowToVerify) {
  const std::string report = RenderRunReport(SampleRun(), SampleEntries());
  EXPECT_THAT(report, HasSubstr("the 13 audit log entries about run 7 (seq 3 to 15)"));
  EXPECT_THAT(report, HasSubstr("`fedmi --config fedmi.toml audit verify`"));
}

TEST(RunReportTest, EscapesTableCellsAndIgnoresOtherRuns) {
  v1::RunStatus run = SampleRun();
  run.mutable_rounds(0)->set_state("odd|state");
  std::vector<v1::AuditEntry> entries = SampleEntries();
  v1::AuditEntry other =
      Entry(16, "coordinator", "site.dropped", 1, R"({"reason":"elsewhere","site":"site-z"})");
  other.set_run_id(8);
  entries.push_back(other);
  const std::string report = RenderRunReport(run, entries);
  EXPECT_THAT(report, HasSubstr("| 1 | odd\\|state | 3 |"));
  EXPECT_THAT(report, Not(HasSubstr("site-z")));
}

}  // namespace
}  // namespace fedmi::cli
