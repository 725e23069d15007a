#include "coordinator/coordinator_http.h"

#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "coordinator/audit_log.h"
#include "coordinator/dashboard_api.h"
#include "coordinator/dashboard_audit.h"
#include "coordinator/dashboard_html.h"
#include "coordinator/dashboard_pages.h"

namespace fedmi {
namespace {

http::Response Refusal(const absl::Status& status) {
  http::Response response;
  response.status = status.code() == absl::StatusCode::kUnauthenticated ? 401 : 403;
  response.body = absl::StrCat(status.message(), "\n");
  return response;
}

// Who a refused request came from, for the audit log: the certificate's
// name when there is one, else the peer address, as the gRPC services do.
std::string ActorOf(const http::Request& request) {
  absl::StatusOr<CertificateInfo> info = ParseCertificatePem(request.peer_certificate_pem);
  if (info.ok() && !info->common_name.empty()) return info->common_name;
  return absl::StrCat("peer ", request.remote_address);
}

// Runs `handler` for readers that `policy` admits; refuses the others.
http::Handler ForReaders(HttpAccessPolicy policy, const std::string& call, http::Handler handler) {
  return [policy = std::move(policy), call,
          handler = std::move(handler)](const http::Request& request) {
    absl::StatusOr<Caller> caller = AuthorizeHttpReader(request, policy);
    if (!caller.ok()) {
      FEDMI_LOG(WARNING) << "denied " << call << " to " << request.remote_address << ": "
                         << caller.status().message();
      if (policy.federation != nullptr) {
        policy.federation->RecordDenied(ActorOf(request), call,
                                        std::string(caller.status().message()));
      }
      return Refusal(caller.status());
    }
    return handler(request);
  };
}

http::Response HtmlResponse(std::string body, int status = 200) {
  http::Response response;
  response.status = status;
  response.content_type = "text/html; charset=utf-8";
  response.body = std::move(body);
  response.headers = {{"Content-Security-Policy", dashboard::ContentSecurityPolicy()},
                      {"Cache-Control", "no-store"},
                      {"X-Content-Type-Options", "nosniff"},
                      {"Referrer-Policy", "no-referrer"}};
  return response;
}

http::Response JsonResponse(const nlohmann::json& json, int status = 200) {
  http::Response response;
  response.status = status;
  response.content_type = "application/json";
  response.body = json.dump() + "\n";
  response.headers = {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}};
  return response;
}

http::Response ErrorResponse(const absl::Status& status) {
  http::Response response;
  response.status = absl::IsNotFound(status) ? 404 : 500;
  response.body = absl::StrCat(status.message(), "\n");
  return response;
}

double NowSeconds(const HttpAccessPolicy& policy) {
  const absl::Time now = policy.clock != nullptr ? policy.clock->Now() : absl::Now();
  return absl::ToDoubleSeconds(now - absl::UnixEpoch());
}

// Every run with its rounds, for the runs page's AUC and trend.
absl::StatusOr<std::vector<v1::RunStatus>> RunsWithRounds(Federation& federation) {
  ASSIGN_OR_RETURN(std::vector<v1::RunStatus> runs, federation.ListRuns());
  for (v1::RunStatus& run : runs) {
    ASSIGN_OR_RETURN(run, federation.GetRun(run.run_id()));
  }
  return runs;
}

// The run a "/runs/ID" or "/api/runs/ID" path names.
absl::StatusOr<v1::RunStatus> RunOfPath(Federation& federation, const std::string& path,
                                        absl::string_view prefix) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(absl::string_view(path).substr(prefix.size()), &id) || id <= 0) {
    return absl::NotFoundError(absl::StrCat("'", path, "' names no run: runs are /runs/1, ..."));
  }
  return federation.GetRun(id);
}

absl::StatusOr<std::string> AuditPageOf(const HttpAccessPolicy& policy,
                                        dashboard::AuditVerificationCache& cache,
                                        const http::Request& request) {
  AuditLog* log = policy.federation->options().audit;
  if (log == nullptr) return absl::NotFoundError("this coordinator keeps no audit log");
  // The head first: entries appended after it are left out of the check.
  ASSIGN_OR_RETURN(v1::AuditInfo info, log->Info());
  ASSIGN_OR_RETURN(std::vector<v1::AuditEntry> entries, log->List(v1::AuditQuery()));
  const dashboard::AuditVerification verification = cache.Verify(
      entries, info.head(), info.signer_certificate_pem(), policy.ca_pem, log->signed_log());
  return dashboard::AuditPage(entries, dashboard::ParseAuditFilter(request.query), verification,
                              NowSeconds(policy));
}

void AddDashboardRoutes(const HttpAccessPolicy& policy, http::Routes& routes) {
  Federation* federation = policy.federation;
  const auto page = [&](const std::string& path, auto render) {
    routes[path] = ForReaders(
        policy, absl::StrCat("GET ", path), [policy, render](const http::Request& request) {
          absl::StatusOr<std::string> body = render(request, policy);
          if (absl::IsNotFound(body.status())) {
            return HtmlResponse(
                dashboard::NotFoundPage(std::string(body.status().message()), NowSeconds(policy)),
                404);
          }
          if (!body.ok()) return ErrorResponse(body.status());
          return HtmlResponse(*std::move(body));
        });
  };
  const auto api = [&](const std::string& path, auto render) {
    routes[path] =
        ForReaders(policy, absl::StrCat("GET ", path), [render](const http::Request& request) {
          absl::StatusOr<nlohmann::json> json = render(request);
          if (!json.ok()) {
            return JsonResponse({{"error", json.status().message()}},
                                absl::IsNotFound(json.status()) ? 404 : 500);
          }
          return JsonResponse(*json);
        });
  };
  const auto runs_page = [federation](const http::Request&,
                                      const HttpAccessPolicy& p) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(auto runs, RunsWithRounds(*federation));
    return dashboard::RunsPage(runs, NowSeconds(p));
  };
  page("/", runs_page);
  page("/runs", runs_page);
  page("/runs/*",
       [federation](const http::Request& request,
                    const HttpAccessPolicy& p) -> absl::StatusOr<std::string> {
         ASSIGN_OR_RETURN(v1::RunStatus run, RunOfPath(*federation, request.path, "/runs/"));
         return dashboard::RunPage(run, NowSeconds(p));
       });
  page(
      "/sites",
      [federation](const http::Request&, const HttpAccessPolicy& p) -> absl::StatusOr<std::string> {
        ASSIGN_OR_RETURN(auto sites, federation->ListSites());
        return dashboard::SitesPage(sites, NowSeconds(p));
      });
  auto cache = std::make_shared<dashboard::AuditVerificationCache>();
  page("/audit",
       [cache](const http::Request& request, const HttpAccessPolicy& p)
           -> absl::StatusOr<std::string> { return AuditPageOf(p, *cache, request); });
  api("/api/runs", [federation](const http::Request&) -> absl::StatusOr<nlohmann::json> {
    ASSIGN_OR_RETURN(auto runs, RunsWithRounds(*federation));
    return dashboard::RunsJson(runs);
  });
  api("/api/runs/*", [federation](const http::Request& request) -> absl::StatusOr<nlohmann::json> {
    ASSIGN_OR_RETURN(v1::RunStatus run, RunOfPath(*federation, request.path, "/api/runs/"));
    return dashboard::RunJson(run);
  });
  api("/api/sites", [federation](const http::Request&) -> absl::StatusOr<nlohmann::json> {
    ASSIGN_OR_RETURN(auto sites, federation->ListSites());
    return dashboard::SitesJson(sites);
  });
}

}  // namespace

absl::StatusOr<Caller> AuthorizeHttpReader(const http::Request& request,
                                           const HttpAccessPolicy& policy) {
  if (!policy.require_certificate) {
    RETURN_IF_ERROR(http::CheckLoopbackHostHeader(request));
    Caller caller;
    caller.name = "loopback";
    caller.role = PartyRole::kAuditor;
    return caller;
  }
  if (request.peer_certificate_pem.empty()) {
    return absl::UnauthenticatedError("no client certificate: connect with an admin's kit");
  }
  absl::StatusOr<CertificateInfo> info = ParseCertificatePem(request.peer_certificate_pem);
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("unreadable client certificate: ", info.status().message()));
  }
  absl::StatusOr<PartyRole> role = ParsePartyRole(info->role_name);
  if (!role.ok() || (*role != PartyRole::kAdmin && *role != PartyRole::kAuditor)) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate '", info->common_name, "' holds the ", info->role_name,
                     " role; the coordinator's pages need admin or auditor"));
  }
  const absl::Time now = policy.clock != nullptr ? policy.clock->Now() : absl::Now();
  const RevocationList* crl =
      policy.federation != nullptr ? &policy.federation->options().crl : nullptr;
  RETURN_IF_ERROR(
      VerifyPartyCertificate(request.peer_certificate_pem, policy.ca_pem, "", *role, now, crl));
  Caller caller;
  caller.name = info->common_name;
  caller.role = *role;
  caller.certificate_expires = absl::ToDoubleSeconds(info->not_after - absl::UnixEpoch());
  caller.certificate_pem = request.peer_certificate_pem;
  caller.certificate_serial = info->serial_hex;
  if (policy.federation != nullptr) RETURN_IF_ERROR(policy.federation->CheckNotRevoked(caller));
  return caller;
}

http::Routes CoordinatorHttpRoutes(const metrics::MetricRegistry* registry,
                                   HttpAccessPolicy policy) {
  http::Routes routes;
  if (policy.federation != nullptr) AddDashboardRoutes(policy, routes);
  routes["/metrics"] =
      ForReaders(std::move(policy), "GET /metrics", [registry](const http::Request&) {
        http::Response response;
        response.content_type = metrics::kExpositionContentType;
        response.body = registry->RenderText();
        return response;
      });
  return routes;
}

}  // namespace fedmi
