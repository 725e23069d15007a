// What fedmi-client serves on `--http HOST:PORT` and who may read it: GET
// /metrics, the client's registry (client/client_metrics.h), with the
// coordinator's security model (docs/operations.md):
//  - on a loopback address, plain HTTP for anyone on this machine, with a
//    warning in the log;
//  - on any other address, HTTPS with the site's own kit, the handshake
//    demanding a client certificate the project CA issued; each request then
//    needs the admin or auditor role, the certificate valid now and not on
//    the CRL (--crl). Anyone else, another site included, gets 403.
// The site has no list of revocations by name (that is the coordinator's):
// the CRL is what it checks. A site's kit certificate is issued for TLS
// clients only, so scrapers that check a server certificate's purpose
// refuse the HTTPS listener; StartClientHttp warns (docs/operations.md).
//
// Thread-safe: the handlers only read.
#ifndef FEDMI_CLIENT_CLIENT_HTTP_H_
#define FEDMI_CLIENT_CLIENT_HTTP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/revocation_list.h"
#include "common/http/http_listener.h"
#include "common/metrics/metric_registry.h"

namespace fedmi {

struct ClientHttpAccess {
  // False: plain HTTP on loopback, no identity asked.
  bool require_certificate = true;
  std::string ca_pem;  // the project CA (PEM)
  RevocationList crl;  // empty unless the site was given --crl
};

// OK when the request's peer certificate may read the site's pages: an admin
// or auditor issued by the CA, valid now, not revoked. Unauthenticated
// without a certificate, PermissionDenied naming why otherwise; always OK
// without require_certificate.
absl::Status AuthorizeClientHttpReader(const http::Request& request,
                                       const ClientHttpAccess& access);

// GET /metrics: `registry`'s text exposition, for readers `access` admits.
// `registry` (not owned) must outlive the routes.
http::Routes ClientHttpRoutes(const metrics::MetricRegistry* registry, ClientHttpAccess access);

// Where and how the listener serves.
struct ClientHttpOptions {
  std::string address;  // HOST:PORT; port 0 picks a free one
  bool insecure = false;
  std::string cert_file, key_file, ca_file, crl_file;  // the site's kit
};

// Starts the listener: plain HTTP on loopback (logging a warning), HTTPS
// with the kit elsewhere. InvalidArgument for a bad address, or a
// non-loopback one with --insecure (no kit to serve HTTPS with).
absl::StatusOr<std::unique_ptr<http::Listener>> StartClientHttp(
    const ClientHttpOptions& options, const metrics::MetricRegistry* registry);

}  // namespace fedmi

#endif  // FEDMI_CLIENT_CLIENT_HTTP_H_
