// Who may read the coordinator's pages, and what /metrics answers, without
// sockets: requests are built by hand with the peer certificate the TLS
// handshake would have verified.
#include "coordinator/coordinator_http.h"

#include "absl/strings/escaping.h"
#include "common/audit/audit.h"
#include "common/crypto/sha256.h"
#include "common/provision/project_ca.h"
#include "coordinator/audit_log.h"
#include "coordinator/coordinator_metrics.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

class CoordinatorHttpTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "proj"));
    ASSERT_OK_AND_ASSIGN(other_ca_, ProjectCa::Create(dir_.Join("other"), "proj"));
    // A signed audit log, so that the dashboard's /audit verifies one.
    ASSERT_OK_AND_ASSIGN(IssuedParty signer_kit,
                         ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(auto signer,
                         audit::AuditSigner::Create(signer_kit.key_pem, signer_kit.cert_pem));
    ASSERT_OK_AND_ASSIGN(audit_, AuditLog::Open(storage_.get(), &clock_, std::move(signer)));
    options_.audit = audit_.get();
    FederationTest::SetUp();
    policy_.ca_pem = ca_->ca_cert_pem();
    policy_.federation = federation_.get();
    policy_.clock = &now_;
  }

  http::Request From(const std::string& name, PartyRole role, const ProjectCa* ca = nullptr) {
    absl::StatusOr<IssuedParty> party =
        (ca != nullptr ? ca : ca_.get())->Issue(name, role, IssueOptions{});
    EXPECT_THAT(party, IsOk());
    http::Request request;
    request.path = "/metrics";
    request.remote_address = "10.0.0.9";
    if (party.ok()) request.peer_certificate_pem = party->cert_pem;
    return request;
  }

  std::unique_ptr<ProjectCa> ca_;
  std::unique_ptr<ProjectCa> other_ca_;
  std::unique_ptr<AuditLog> audit_;
  // The fixture's clock_ is in 2023, before these certificates were issued.
  FakeClock now_{absl::Now()};
  HttpAccessPolicy policy_;
};

TEST_F(CoordinatorHttpTest, AdminsAndAuditorsMayRead) {
  ASSERT_OK_AND_ASSIGN(Caller admin,
                       AuthorizeHttpReader(From("admin-1", PartyRole::kAdmin), policy_));
  EXPECT_EQ(admin.name, "admin-1");
  EXPECT_EQ(admin.role, PartyRole::kAdmin);
  ASSERT_OK_AND_ASSIGN(Caller auditor,
                       AuthorizeHttpReader(From("audit-1", PartyRole::kAuditor), policy_));
  EXPECT_EQ(auditor.role, PartyRole::kAuditor);
}

TEST_F(CoordinatorHttpTest, SitesAndCoordinatorsMayNot) {
  EXPECT_THAT(
      AuthorizeHttpReader(From("site-a", PartyRole::kSite), policy_),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'site-a' holds the site role")));
  EXPECT_THAT(AuthorizeHttpReader(From("coordinator", PartyRole::kCoordinator), policy_),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(CoordinatorHttpTest, NoCertificateIsUnauthenticated) {
  http::Request anonymous;
  anonymous.path = "/metrics";
  EXPECT_THAT(AuthorizeHttpReader(anonymous, policy_),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no client certificate")));
}

TEST_F(CoordinatorHttpTest, AnAdminOfAnotherProjectIsRefused) {
  EXPECT_THAT(AuthorizeHttpReader(From("admin-1", PartyRole::kAdmin, other_ca_.get()), policy_),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(CoordinatorHttpTest, AnExpiredCertificateIsRefused) {
  const http::Request request = From("admin-1", PartyRole::kAdmin);
  now_.Advance(absl::Hours(24 * 400));
  EXPECT_THAT(AuthorizeHttpReader(request, policy_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("expired")));
}

TEST_F(CoordinatorHttpTest, ARevokedAdminIsRefused) {
  ASSERT_THAT(federation_->Revoke(Admin(), "admin-2", PartyRole::kAdmin, "left the project"),
              IsOk());
  EXPECT_THAT(AuthorizeHttpReader(From("admin-2", PartyRole::kAdmin), policy_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("left the project")));
}

TEST_F(CoordinatorHttpTest, OnLoopbackNoCertificateIsAsked) {
  HttpAccessPolicy loopback;
  loopback.require_certificate = false;
  EXPECT_THAT(AuthorizeHttpReader(http::Request{"/metrics", "127.0.0.1", "", {}, ""}, loopback),
              IsOk());
}

// A web page the operator opens elsewhere can point its own name at
// 127.0.0.1 (DNS rebinding) and read the unauthenticated loopback pages as
// its own origin; its requests carry its name in Host, a browser on this
// machine or a tunnel a loopback name.
TEST_F(CoordinatorHttpTest, OnLoopbackOnlyLoopbackHostNamesAreServed) {
  HttpAccessPolicy loopback;
  loopback.require_certificate = false;
  const auto with_host = [](const std::string& host) {
    http::Request request{"/api/runs", "127.0.0.1", "", {}, ""};
    request.host = host;
    return request;
  };
  for (const char* host :
       {"127.0.0.1:9100", "localhost:9100", "LOCALHOST", "[::1]:9100", "127.0.0.2", ""}) {
    EXPECT_THAT(AuthorizeHttpReader(with_host(host), loopback), IsOk()) << host;
  }
  for (const char* host : {"attacker.example:9100", "attacker.example", "10.0.0.9:9100",
                           "127.0.0.1.attacker.example", "[2001:db8::1]:9100"}) {
    EXPECT_THAT(AuthorizeHttpReader(with_host(host), loopback),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("Host")))
        << host;
  }
}

TEST_F(CoordinatorHttpTest, MetricsServesTheRegistryAndRefusesOthersWith403) {
  metrics::MetricRegistry registry;
  ASSERT_THAT(RegisterCoordinatorMetrics(federation_.get(), storage_.get(), &registry), IsOk());
  Connect("site-a");
  http::Routes routes = CoordinatorHttpRoutes(&registry, policy_);
  ASSERT_EQ(routes.count("/metrics"), 1u);

  const http::Response ok = routes["/metrics"](From("admin-1", PartyRole::kAdmin));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(ok.body, HasSubstr("\nfedmi_coordinator_sites_connected 1\n"));

  const http::Response refused = routes["/metrics"](From("site-a", PartyRole::kSite));
  EXPECT_EQ(refused.status, 403);
  EXPECT_THAT(refused.body, HasSubstr("need admin or auditor"));
  EXPECT_EQ(routes["/metrics"](http::Request{"/metrics", "10.0.0.9", "", {}, ""}).status, 401);
}

// The dashboard's pages and JSON behind the same check as /metrics.
TEST_F(CoordinatorHttpTest, DashboardServesAdminsAndRefusesSites) {
  metrics::MetricRegistry registry;
  Connect("site-a");
  Connect("site-b");
  const int64_t run = StartRun(Spec(5, 2));
  http::Routes routes = CoordinatorHttpRoutes(&registry, policy_);
  const auto get = [&routes](http::Request request, const std::string& path) {
    request.path = path;
    const size_t question = path.find('?');
    if (question != std::string::npos) {
      request.path = path.substr(0, question);
      request.query["run"] = path.substr(question + 5);  // "?run=N" only
    }
    const http::Handler* handler = http::FindRoute(routes, request.path);
    return handler == nullptr ? http::Response{404, "", "", {}} : (*handler)(request);
  };
  const http::Request admin = From("admin-1", PartyRole::kAdmin);
  for (const char* path :
       {"/", "/runs", "/runs/1", "/sites", "/audit", "/api/runs", "/api/runs/1", "/api/sites"}) {
    const http::Response page = get(admin, path);
    EXPECT_EQ(page.status, 200) << path << ": " << page.body;
    const http::Response refused = get(From("site-a", PartyRole::kSite), path);
    EXPECT_EQ(refused.status, 403) << path;
    EXPECT_THAT(refused.body, ::testing::Not(HasSubstr("site-b"))) << path;
    EXPECT_EQ(get(http::Request{path, "10.0.0.9", "", {}, ""}, path).status, 401) << path;
  }
  const http::Response runs = get(admin, "/runs");
  EXPECT_EQ(runs.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(runs.headers.at("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  // Scripts: the page's own inline script by its hash, no other inline one.
  const size_t script_at = runs.body.find("<script>") + 8;
  const std::string script =
      runs.body.substr(script_at, runs.body.find("</script>", script_at) - script_at);
  EXPECT_THAT(runs.headers.at("Content-Security-Policy"),
              HasSubstr(absl::StrCat("script-src 'sha256-",
                                     absl::Base64Escape(Sha256::Digest(script)), "';")));
  EXPECT_THAT(runs.headers.at("Content-Security-Policy"),
              ::testing::Not(HasSubstr("script-src 'unsafe-inline'")));
  EXPECT_THAT(runs.body, HasSubstr(absl::StrCat("data-run=\"", run, "\" data-state=\"running\"")));
  EXPECT_THAT(get(admin, "/sites").body, HasSubstr("id=\"connected-count\">2 of 2</div>"));
  EXPECT_THAT(get(admin, "/api/sites").body, HasSubstr("\"site\":\"site-b\""));
  EXPECT_EQ(get(admin, "/api/runs/1").content_type, "application/json");

  // The audit log verifies, and the filter comes from the query string.
  const http::Response audit = get(admin, "/audit?run=1");
  EXPECT_THAT(audit.body, HasSubstr("data-intact=\"1\""));
  EXPECT_THAT(audit.body, HasSubstr("<td>run.started</td>"));
  EXPECT_THAT(audit.body, ::testing::Not(HasSubstr("<td>site.connected</td>")));
  // A refused reader is in the log, as for /metrics.
  EXPECT_THAT(get(admin, "/audit").body, HasSubstr("GET /sites"));

  EXPECT_EQ(get(admin, "/runs/99").status, 404);
  EXPECT_THAT(get(admin, "/runs/99").body, HasSubstr("run 99 does not exist"));
  EXPECT_EQ(get(admin, "/runs/x").status, 404);
  EXPECT_EQ(get(admin, "/api/runs/99").status, 404);
}

}  // namespace
}  // namespace fedmi
