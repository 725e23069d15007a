#include "coordinator/coordinator_http.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"

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

}  // namespace

absl::StatusOr<Caller> AuthorizeHttpReader(const http::Request& request,
                                           const HttpAccessPolicy& policy) {
  if (!policy.require_certificate) {
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
