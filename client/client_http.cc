#include "client/client_http.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"

namespace fedmi {

absl::Status AuthorizeClientHttpReader(const http::Request& request,
                                       const ClientHttpAccess& access) {
  if (!access.require_certificate) return http::CheckLoopbackHostHeader(request);
  if (request.peer_certificate_pem.empty()) {
    return absl::UnauthenticatedError("no client certificate: connect with an admin's kit");
  }
  absl::StatusOr<CertificateInfo> parsed = ParseCertificatePem(request.peer_certificate_pem);
  if (!parsed.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("unreadable client certificate: ", parsed.status().message()));
  }
  const CertificateInfo& info = *parsed;
  absl::StatusOr<PartyRole> role = ParsePartyRole(info.role_name);
  if (!role.ok() || (*role != PartyRole::kAdmin && *role != PartyRole::kAuditor)) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate '", info.common_name, "' holds the ", info.role_name,
                     " role; the site's pages need admin or auditor"));
  }
  return VerifyPartyCertificate(request.peer_certificate_pem, access.ca_pem, "", *role, absl::Now(),
                                &access.crl);
}

http::Routes ClientHttpRoutes(const metrics::MetricRegistry* registry, ClientHttpAccess access) {
  http::Routes routes;
  routes["/metrics"] = [registry, access = std::move(access)](const http::Request& request) {
    http::Response response;
    if (absl::Status allowed = AuthorizeClientHttpReader(request, access); !allowed.ok()) {
      FEDMI_LOG(WARNING) << "denied GET /metrics to " << request.remote_address << ": "
                         << allowed.message();
      response.status = allowed.code() == absl::StatusCode::kUnauthenticated ? 401 : 403;
      response.body = absl::StrCat(allowed.message(), "\n");
      return response;
    }
    response.content_type = metrics::kExpositionContentType;
    response.body = registry->RenderText();
    return response;
  };
  return routes;
}

absl::StatusOr<std::unique_ptr<http::Listener>> StartClientHttp(
    const ClientHttpOptions& options, const metrics::MetricRegistry* registry) {
  ASSIGN_OR_RETURN(auto host_port, http::SplitHostPort(options.address));
  const bool loopback = http::IsLoopbackHost(host_port.first);
  ClientHttpAccess access;
  access.require_certificate = !loopback;
  std::optional<http::TlsServerOptions> tls;
  if (!loopback) {
    if (options.insecure || options.cert_file.empty() || options.key_file.empty() ||
        options.ca_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--http ", options.address,
          " is not a loopback address: it serves HTTPS with the site's kit (--cert, --key, --ca), "
          "which ",
          options.insecure ? "--insecure does not use" : "is incomplete",
          "; use 127.0.0.1 for plain HTTP on this machine"));
    }
    ASSIGN_OR_RETURN(access.ca_pem, ReadFileToString(options.ca_file));
    if (!options.crl_file.empty()) {
      ASSIGN_OR_RETURN(access.crl, LoadRevocationList(options.crl_file, options.ca_file));
    }
    tls = http::TlsServerOptions{options.cert_file, options.key_file, options.ca_file};
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<http::Listener> listener,
      http::Listener::Start(options.address, ClientHttpRoutes(registry, std::move(access)), tls));
  if (loopback) {
    FEDMI_LOG(WARNING) << "serving /metrics over plain HTTP on " << options.address << " (port "
                       << listener->port()
                       << "): no encryption and no authentication, so anyone on this machine can "
                          "read it; on another address it would need HTTPS and an admin's or "
                          "auditor's certificate";
  } else {
    FEDMI_LOG(INFO) << "serving /metrics over HTTPS on " << options.address << " (port "
                    << listener->port() << ") to admin and auditor certificates of the project CA";
    absl::StatusOr<std::string> cert = ReadFileToString(options.cert_file);
    absl::StatusOr<CertificateInfo> info =
        cert.ok() ? ParseCertificatePem(*cert) : absl::StatusOr<CertificateInfo>(cert.status());
    if (info.ok() && !info->server_auth) {
      // A site's kit is issued for TLS clients: a scraper that checks the
      // server certificate's purpose (Prometheus, curl, OpenSSL) refuses it.
      FEDMI_LOG(WARNING) << "this site's certificate is issued for TLS clients only, so "
                            "scrapers that check the server's certificate purpose refuse it; "
                            "serve --http on 127.0.0.1 and scrape through an SSH tunnel instead "
                            "(docs/operations.md)";
    }
  }
  return listener;
}

}  // namespace fedmi
