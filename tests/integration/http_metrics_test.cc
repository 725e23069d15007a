// fedmi-coordinator's --http listener as a process: Prometheus /metrics
// over plain HTTP on loopback (set through the TOML config key), and over
// HTTPS with the project's admin and auditor certificates on any other
// address, where a site certificate gets 403 and no certificate no
// connection at all.

#include <fstream>

#include "common/http/http_listener.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";

// GETs `path` until the listener answers: the coordinator writes its gRPC
// port file after --http is listening, but a test may outrun it on a
// loaded machine.
absl::StatusOr<http::Response> GetWhenUp(int port, const std::string& path,
                                         const std::optional<http::ClientTls>& tls = {}) {
  absl::StatusOr<http::Response> response;
  for (int i = 0; i < 50; ++i) {
    response = http::Get("127.0.0.1", port, path, tls);
    if (response.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return response;
}

class HttpMetricsTest : public ::testing::Test {
 protected:
  // Starts a coordinator whose config file sets `http = "<http>"`.
  void Start(const std::string& http) {
    const std::string config = scratch_.Join("coordinator.toml");
    std::ofstream(config) << "http = \"" << http << "\"\n";
    coordinator_ = std::make_unique<CoordinatorProcess>(
        scratch_.path(), &project_, "127.0.0.1:0", "coordinator.log",
        std::vector<std::string>{"FEDMI_CONFIG=" + config});
  }

  int64_t StartWaitingRun() {
    v1::RunSpec spec;
    spec.set_model("synthetic");
    spec.set_synthetic_params(8);
    spec.set_rounds(2);
    spec.set_min_sites(2);  // no site connects: the run waits for them
    absl::StatusOr<int64_t> run = coordinator_->admin().StartRun(spec);
    EXPECT_THAT(run, IsOk());
    return run.ok() ? *run : 0;
  }

  http::ClientTls Kit(const std::string& party) const {
    const TransportOptions transport = project_.Transport(party);
    return http::ClientTls{transport.ca_file, transport.cert_file, transport.key_file};
  }

  // promtool (Debian's `prometheus`) is the reference parser and linter;
  // where it is not installed, the unit tests' strict checker stands in.
  void ExpectPromtoolAccepts(const std::string& body) {
    if (RunCommand("command -v promtool >/dev/null").exit_code != 0) return;
    const std::string file = scratch_.Join("metrics.txt");
    std::ofstream(file) << body;
    CommandOutput check = RunCommand(absl::StrCat("promtool check metrics < ", file, " 2>&1"));
    EXPECT_EQ(check.exit_code, 0) << check.stdout_text;
  }

  ScratchDir scratch_;
  TestProject project_{scratch_.path()};
  std::unique_ptr<CoordinatorProcess> coordinator_;
};

TEST_F(HttpMetricsTest, LoopbackServesMetricsOverPlainHttpWithAWarning) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  Start(absl::StrCat("127.0.0.1:", port));
  const int64_t run = StartWaitingRun();
  ASSERT_EQ(run, 1);

  ASSERT_OK_AND_ASSIGN(http::Response metrics, GetWhenUp(port, "/metrics"));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, kExpositionType);
  EXPECT_THAT(metrics.body, HasSubstr("\n# TYPE fedmi_coordinator_runs gauge\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_runs{state=\"running\"} 1\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_runs{state=\"done\"} 0\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_sites_known 0\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_run_current_round{run=\"1\"} 0\n"));
  EXPECT_THAT(
      metrics.body,
      HasSubstr("\nfedmi_coordinator_run_phase{run=\"1\",phase=\"waiting-for-sites\"} 1\n"));
  // The audit log's length as `fedmi audit info` reports it.
  ASSERT_OK_AND_ASSIGN(v1::AuditInfo audit, coordinator_->admin().GetAuditInfo());
  EXPECT_GE(audit.entries(), 2) << "coordinator.started and run.started";
  EXPECT_THAT(metrics.body, HasSubstr(absl::StrCat("\nfedmi_coordinator_audit_entries_total ",
                                                   audit.entries(), "\n")));

  ASSERT_OK_AND_ASSIGN(http::Response missing, http::Get("127.0.0.1", port, "/nothing"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(coordinator_->process().LogTail(50), HasSubstr("serving /metrics over plain HTTP"));

  ExpectPromtoolAccepts(metrics.body);
}

TEST_F(HttpMetricsTest, AfterARunTheMetricsAgreeWithItsStatus) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  Start(absl::StrCat("127.0.0.1:", port));
  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (const char* name : {"site-1", "site-2"}) {
    sites.push_back(StartSyntheticSite(project_, coordinator_->address(), name, scratch_.path()));
    ASSERT_NE(sites.back(), nullptr);
  }
  ASSERT_THAT(coordinator_->admin().WaitForSites(2, absl::Seconds(30)), IsOk());
  ASSERT_OK_AND_ASSIGN(int64_t run,
                       coordinator_->admin().StartRun(SyntheticSpec(1000, /*rounds=*/2, 2)));
  const v1::RunStatus status = WatchToEnd(coordinator_->admin(), run);
  ASSERT_EQ(status.state(), "done") << status.error();
  ASSERT_EQ(status.completed_rounds(), 2);

  ASSERT_OK_AND_ASSIGN(http::Response metrics, GetWhenUp(port, "/metrics"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_sites_known 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_sites_connected 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_runs{state=\"done\"} 1\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_runs{state=\"running\"} 0\n"));
  EXPECT_THAT(metrics.body, Not(HasSubstr("run=\"1\""))) << "a finished run has no series";
  // The initial model, then two updates in each of the two rounds.
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_coordinator_updates_accepted_total 5\n"));
  EXPECT_THAT(metrics.body, Not(HasSubstr("fedmi_coordinator_updates_refused_total")));
  // Each evaluated round of the status is one observed duration.
  EXPECT_THAT(metrics.body,
              HasSubstr(absl::StrCat(
                  "\nfedmi_coordinator_round_duration_seconds_count{outcome=\"evaluated\"} ",
                  status.completed_rounds(), "\n")));
  // Both sites downloaded the global model of each round: some bytes left.
  EXPECT_THAT(
      metrics.body,
      Not(HasSubstr("\nfedmi_coordinator_sent_bytes_total{stream=\"model_download\"} 0\n")));
  EXPECT_THAT(metrics.body,
              HasSubstr("\nfedmi_coordinator_sent_bytes_total{stream=\"model_export\"} 0\n"));
  ExpectPromtoolAccepts(metrics.body);
}

TEST_F(HttpMetricsTest, AnyOtherAddressServesHttpsToAdminsAndAuditorsOnly) {
  project_.Add("auditor-1", PartyRole::kAuditor);
  project_.Add("site-1", PartyRole::kSite);
  const int port = FreePort();
  ASSERT_GT(port, 0);
  // The wildcard address is not loopback; the test still connects through
  // 127.0.0.1, which the coordinator's certificate names.
  Start(absl::StrCat("0.0.0.0:", port));

  ASSERT_OK_AND_ASSIGN(http::Response admin, GetWhenUp(port, "/metrics", Kit("admin-1")));
  EXPECT_EQ(admin.status, 200);
  EXPECT_EQ(admin.content_type, kExpositionType);
  EXPECT_THAT(admin.body, HasSubstr("\nfedmi_coordinator_sites_known 0\n"));
  ASSERT_OK_AND_ASSIGN(http::Response auditor,
                       http::Get("127.0.0.1", port, "/metrics", Kit("auditor-1")));
  EXPECT_EQ(auditor.status, 200);

  ASSERT_OK_AND_ASSIGN(http::Response site,
                       http::Get("127.0.0.1", port, "/metrics", Kit("site-1")));
  EXPECT_EQ(site.status, 403);
  EXPECT_THAT(site.body, HasSubstr("'site-1' holds the site role"));
  EXPECT_THAT(site.body, Not(HasSubstr("fedmi_coordinator")));

  http::ClientTls anonymous = Kit("admin-1");
  anonymous.cert_file.clear();
  anonymous.key_file.clear();
  EXPECT_EQ(http::Get("127.0.0.1", port, "/metrics", anonymous).status().code(),
            absl::StatusCode::kUnavailable)
      << "the handshake refuses a client without a certificate";
  absl::StatusOr<http::Response> plain = http::Get("127.0.0.1", port, "/metrics");
  if (plain.ok()) {
    EXPECT_NE(plain->status, 200) << "no plain HTTP";
  }

  // The refusal is in the audit log, as a refused gRPC call is.
  CommandOutput log =
      RunCommand(absl::StrCat(Binary("fedmi"), project_.FlagString("admin-1"), " --coordinator ",
                              coordinator_->address(), " audit log --csv 2>&1"));
  EXPECT_THAT(log.stdout_text, HasSubstr("GET /metrics"));
}

TEST(HttpFlagTest, HelpDocumentsItAndInsecureCannotServeOtherAddresses) {
  CommandOutput help = RunCommand(Binary("fedmi-coordinator") + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.stdout_text, HasSubstr("--http"));

  ScratchDir scratch;
  const std::string base =
      absl::StrCat(Binary("fedmi-coordinator"), " --insecure --db ", scratch.Join("c.db"));
  CommandOutput wildcard = RunCommand(base + " --http 0.0.0.0:9 2>&1");
  EXPECT_EQ(wildcard.exit_code, 2);
  EXPECT_THAT(wildcard.stdout_text, HasSubstr("non-loopback"));
  CommandOutput malformed = RunCommand(base + " --http 9100 2>&1");
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_THAT(malformed.stdout_text, HasSubstr("--http"));
}

}  // namespace
}  // namespace fedmi
