// The dashboard's pages and JSON from hand-made status values: what an
// operator reads (state, round k of N, AUC and its trend, connection,
// expiry), that data is escaped, and that no page names another origin.
#include "coordinator/dashboard_pages.h"

#include <regex>

#include "coordinator/dashboard_api.h"
#include "coordinator/dashboard_html.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::dashboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNow = 1796585400;  // 2026-12-06 19:30:00 UTC

v1::Metrics Eval(int64_t examples, double loss, double auc, double sensitivity,
                 double specificity) {
  v1::Metrics metrics;
  metrics.set_examples(examples);
  metrics.set_loss(loss);
  metrics.set_auc(auc);
  metrics.set_sensitivity(sensitivity);
  metrics.set_specificity(specificity);
  return metrics;
}

void AddSite(v1::RoundStatus* round, const std::string& name, const v1::Metrics& eval,
             const std::string& state = "evaluated") {
  v1::SiteParticipation* site = round->add_sites();
  site->set_site(name);
  site->set_state(state);
  site->set_examples(eval.examples() * 5);
  *site->mutable_eval_metrics() = eval;
}

// Run 4: 10 rounds, two evaluated (AUC 0.70, then 0.78), round 3 training.
v1::RunStatus RunningRun() {
  v1::RunStatus run;
  run.set_run_id(4);
  run.set_state("running");
  run.set_phase("training");
  run.set_current_round(3);
  run.set_completed_rounds(2);
  run.set_created_at(kNow - 600);
  run.mutable_spec()->set_model("cnn");
  run.mutable_spec()->set_rounds(10);
  run.mutable_spec()->set_min_sites(3);
  run.mutable_spec()->set_secure_aggregation(true);
  const double auc[] = {0.70, 0.78};
  for (int r = 1; r <= 2; ++r) {
    v1::RoundStatus* round = run.add_rounds();
    round->set_round(r);
    round->set_state("evaluated");
    *round->mutable_eval_metrics() = Eval(300, 0.7 - 0.1 * r, auc[r - 1], 0.8, 0.6 + 0.05 * r);
    AddSite(round, "st-marys", Eval(100, 0.6, auc[r - 1] - 0.02, 0.8, 0.6));
    AddSite(round, "royal-london", Eval(200, 0.5, auc[r - 1] + 0.01, 0.8, 0.7));
  }
  v1::RoundStatus* training = run.add_rounds();
  training->set_round(3);
  training->set_state("training");
  AddSite(training, "st-marys", v1::Metrics(), "training");
  AddSite(training, "royal-london", v1::Metrics(), "dropped");
  return run;
}

// Every absolute URL in `html`: a page must name none.
std::vector<std::string> Urls(const std::string& html) {
  std::vector<std::string> urls;
  const std::regex url("(https?:)?//[A-Za-z0-9.-]+");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), url); it != std::sregex_iterator();
       ++it) {
    urls.push_back(it->str());
  }
  return urls;
}

TEST(DashboardPagesTest, RunsPageShowsStateProgressAndTheAucTrend) {
  v1::RunStatus done;
  done.set_run_id(3);
  done.set_state("failed");
  done.set_error("too few sites");
  done.set_completed_rounds(1);
  done.mutable_spec()->set_rounds(5);
  const std::string page = RunsPage({done, RunningRun()}, kNow);
  EXPECT_THAT(page, HasSubstr("2 runs: 1 running, 1 failed"));
  EXPECT_THAT(page, HasSubstr("<a href=\"/runs/4\">Run 4</a>"));
  EXPECT_THAT(page, HasSubstr("<span class=\"badge running\">running</span>"));
  EXPECT_THAT(page, HasSubstr("round 3 of 10 (training)"));
  EXPECT_THAT(page, HasSubstr("<span class=\"auc\">0.780</span>"));
  EXPECT_THAT(page, HasSubstr("\xE2\x96\xB2 +0.080"));
  EXPECT_THAT(page, HasSubstr("class=\"sparkline\""));
  // Round 3: one of its two sites dropped.
  EXPECT_THAT(page, HasSubstr(">1 of 2</td>"));
  EXPECT_THAT(page, HasSubstr("1 of 5 rounds"));
  EXPECT_THAT(page, HasSubstr("too few sites"));
  // Newest run first.
  EXPECT_LT(page.find("data-run=\"4\""), page.find("data-run=\"3\""));
  EXPECT_THAT(page, HasSubstr("<main data-live=\"1\">"));
  EXPECT_THAT(Urls(page), ::testing::IsEmpty());
}

TEST(DashboardPagesTest, RunPagePlotsEachMetricPooledAndPerSite) {
  const std::string page = RunPage(RunningRun(), kNow);
  for (const char* title :
       {">Loss</text>", ">AUC</text>", ">Sensitivity</text>", ">Specificity</text>"}) {
    EXPECT_THAT(page, HasSubstr(title));
  }
  // Four pooled charts with two points each; per site, four small charts
  // each for two sites.
  int pooled = 0;
  for (size_t at = page.find("data-series=\"pooled\" data-points=\"2\""); at != std::string::npos;
       at = page.find("data-series=\"pooled\" data-points=\"2\"", at + 1)) {
    ++pooled;
  }
  EXPECT_EQ(pooled, 4);
  EXPECT_THAT(page, HasSubstr("<tr data-site=\"royal-london\">"));
  EXPECT_THAT(page, HasSubstr("<tr data-site=\"st-marys\">"));
  EXPECT_THAT(page, HasSubstr("data-series=\"st-marys\" data-points=\"2\""));
  EXPECT_THAT(page, HasSubstr("data-completed-rounds=\"2\""));
  EXPECT_THAT(page, HasSubstr("0.780"));
  EXPECT_THAT(page, HasSubstr("best 0.780 in round 2"));
  EXPECT_THAT(page, HasSubstr("Round 3: training"));
  EXPECT_THAT(page, HasSubstr("Secure aggregation</dt><dd>on"));
  EXPECT_THAT(page, HasSubstr("Differential privacy</dt><dd><span class=\"muted\">off"));
  EXPECT_THAT(page, HasSubstr("Full spec (JSON)"));
  EXPECT_THAT(page, HasSubstr("<main data-live=\"1\">"));
  EXPECT_THAT(Urls(page), ::testing::IsEmpty());

  v1::RunStatus finished = RunningRun();
  finished.set_state("done");
  EXPECT_THAT(RunPage(finished, kNow), HasSubstr("<main data-live=\"0\">"))
      << "a finished run's page stops polling";
}

TEST(DashboardPagesTest, ARunNotYetEvaluatedSaysSo) {
  v1::RunStatus run;
  run.set_run_id(1);
  run.set_state("running");
  run.set_phase("waiting-for-sites");
  run.mutable_spec()->set_rounds(3);
  EXPECT_THAT(RunsPage({run}, kNow), HasSubstr("not yet evaluated"));
  EXPECT_THAT(RunsPage({run}, kNow), HasSubstr("0 of 3 rounds (waiting-for-sites)"));
  const std::string page = RunPage(run, kNow);
  EXPECT_THAT(page, HasSubstr("no round evaluated yet"));
  EXPECT_THAT(page, HasSubstr(">no rounds yet</text>"));
}

TEST(DashboardPagesTest, SitesPageShowsConnectionLastSeenExpiryAndRevocation) {
  v1::SiteInfo up;
  up.set_site("st-marys");
  up.set_connected(true);
  up.set_state("active");
  up.set_last_seen(kNow - 12);
  up.set_certificate_expires(kNow + 200 * 86400.0);
  v1::SiteInfo down = up;
  down.set_site("royal-london");
  down.set_connected(false);
  down.set_last_seen(kNow - 600);
  down.set_certificate_expires(kNow + 10 * 86400.0);
  v1::SiteInfo revoked = up;
  revoked.set_site("old-site");
  revoked.set_connected(false);
  revoked.set_state("revoked");
  revoked.set_revoked_by("alice");
  revoked.set_revocation_reason("agreement ended");
  const std::string page = SitesPage({up, down, revoked}, kNow);
  EXPECT_THAT(page, HasSubstr("id=\"connected-count\">1 of 2</div>"));
  EXPECT_THAT(page, HasSubstr("<tr data-site=\"st-marys\" data-connected=\"1\">"));
  EXPECT_THAT(page, HasSubstr("<span class=\"up-text\">connected</span>"));
  EXPECT_THAT(page, HasSubstr("12 s ago"));
  EXPECT_THAT(page, HasSubstr("10 min ago"));
  EXPECT_THAT(page, HasSubstr("(in 200 days)"));
  EXPECT_THAT(page, HasSubstr("<span class=\"warn\">2026-12-16 (in 10 days)</span>"));
  EXPECT_THAT(page, HasSubstr("<span class=\"revoked-text\">revoked</span>"));
  EXPECT_THAT(page, HasSubstr("by alice</span>"));
  EXPECT_THAT(page, HasSubstr("agreement ended"));
  EXPECT_THAT(Urls(page), ::testing::IsEmpty());
}

// Names and errors come from sites and admins: none of them may become
// markup or script.
TEST(DashboardPagesTest, DataIsEscapedEverywhere) {
  const std::string evil = "<script>alert(1)</script>";
  const std::string escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
  v1::SiteInfo site;
  site.set_site(evil);
  site.set_state("revoked");
  site.set_revoked_by(evil);
  site.set_revocation_reason(evil);
  v1::RunStatus run = RunningRun();
  run.mutable_spec()->set_model(evil);
  run.set_error(evil);
  run.set_phase(evil);
  AddSite(run.mutable_rounds(0), evil, Eval(10, 0.5, 0.5, 0.5, 0.5));
  for (const std::string& page : {SitesPage({site}, kNow), RunsPage({run}, kNow),
                                  RunPage(run, kNow), NotFoundPage(evil, kNow)}) {
    EXPECT_THAT(page, Not(HasSubstr("<script>alert"))) << page;
    EXPECT_THAT(page, HasSubstr(escaped));
    // The page's own script is the only one.
    EXPECT_EQ(page.find("<script>"), page.rfind("<script>"));
  }
}

TEST(DashboardHtmlTest, FormatsTimesAgesAndMetrics) {
  EXPECT_EQ(FormatTime(kNow), "2026-12-06 19:30:00 UTC");
  EXPECT_EQ(FormatTime(0), "never");
  EXPECT_EQ(FormatAgo(1), "just now");
  EXPECT_EQ(FormatAgo(42), "42 s ago");
  EXPECT_EQ(FormatAgo(300), "5 min ago");
  EXPECT_EQ(FormatAgo(3 * 3600 + 5), "3 h ago");
  EXPECT_EQ(FormatAgo(5 * 86400), "5 days ago");
  EXPECT_EQ(FormatMetric(0.81234), "0.812");
  EXPECT_EQ(FormatMetric(std::nan("")), "\xE2\x80\x93");
  EXPECT_EQ(ProgressBar(3, 10, "round 3 of 10").find("width:30%") != std::string::npos, true);
}

// Each refused poll is an auth.denied entry in the append-only audit log:
// after a 401 or 403 the script says so and stops, instead of retrying
// (as it does after any other failure) every 10 s for as long as the tab
// stays open. (Checked in Chromium by hand: one poll after a 403, a poll
// every 2 * refresh after a 500.)
TEST(DashboardHtmlTest, ThePollingScriptStopsWhenRefused) {
  const std::string script = PageScript();
  EXPECT_THAT(script, HasSubstr("e.refused=r.status===401||r.status===403"));
  const size_t refused = script.find("if(e.refused)");
  ASSERT_NE(refused, std::string::npos);
  const std::string branch = script.substr(refused, script.find('}', refused) - refused);
  EXPECT_THAT(branch, HasSubstr("return;"));
  EXPECT_THAT(branch, Not(HasSubstr("setTimeout")));
}

TEST(DashboardApiTest, JsonCarriesTheNumbersThePagesShow) {
  const nlohmann::json runs = RunsJson({RunningRun()});
  ASSERT_EQ(runs["runs"].size(), 1u);
  EXPECT_EQ(runs["runs"][0]["run_id"], 4);
  EXPECT_EQ(runs["runs"][0]["state"], "running");
  EXPECT_EQ(runs["runs"][0]["completed_rounds"], 2);
  EXPECT_EQ(runs["runs"][0]["rounds"], 10);
  EXPECT_DOUBLE_EQ(runs["runs"][0]["latest_auc"].get<double>(), 0.78);

  const nlohmann::json run = RunJson(RunningRun());
  ASSERT_EQ(run["rounds"].size(), 3u);
  EXPECT_DOUBLE_EQ(run["rounds"][0]["eval"]["auc"].get<double>(), 0.70);
  EXPECT_EQ(run["rounds"][0]["sites"][1]["site"], "royal-london");
  EXPECT_TRUE(run["rounds"][2]["eval"].is_null()) << "round 3 is not evaluated";
  EXPECT_EQ(run["secure_aggregation"], true);

  v1::SiteInfo site;
  site.set_site("st-marys");
  site.set_connected(true);
  const nlohmann::json sites = SitesJson({site});
  EXPECT_EQ(sites["sites"][0]["site"], "st-marys");
  EXPECT_EQ(sites["sites"][0]["connected"], true);
}

}  // namespace
}  // namespace fedmi::dashboard
