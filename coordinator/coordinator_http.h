// What the coordinator serves on `--http` and who may read it, without the
// transport: the routes that http::Listener serves (Prometheus /metrics and
// the read-only dashboard), and the access check they apply to each
// request.
//
// Access (docs/operations.md):
//  - On a loopback address (`require_certificate` false) the listener speaks
//    plain HTTP and every request is served: only this machine can connect.
//    Only a request whose Host header (when sent) is a loopback name, since
//    a browser here would send a rebinding page's requests with its name.
//  - On any other address the listener speaks HTTPS and the handshake
//    already demands a certificate the project CA issued; each request then
//    needs the admin or auditor role, checked as the gRPC services check it:
//    VerifyPartyCertificate against the CA (validity, role, TLS client usage,
//    the CRL) and Federation::CheckNotRevoked (an admin's revocation by
//    name). A refusal is 403, recorded in the audit log as auth.denied.
//
// Thread-safe: the handlers only read.
#ifndef FEDMI_COORDINATOR_COORDINATOR_HTTP_H_
#define FEDMI_COORDINATOR_COORDINATOR_HTTP_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/http/http_listener.h"
#include "common/metrics/metric_registry.h"
#include "coordinator/caller.h"
#include "coordinator/federation.h"

namespace fedmi {

struct HttpAccessPolicy {
  // False: plain HTTP on loopback, no identity asked.
  bool require_certificate = true;
  std::string ca_pem;  // the project CA (PEM)
  // Not owned; for revocations and the audit log's auth.denied entries.
  Federation* federation = nullptr;
  const Clock* clock = nullptr;
};

// The caller a request's peer certificate names, when it may read the
// coordinator's pages: an admin or an auditor, issued by the CA, valid now,
// not revoked. Unauthenticated without a certificate; PermissionDenied
// naming why otherwise. With require_certificate false, an anonymous
// auditor-like caller.
absl::StatusOr<Caller> AuthorizeHttpReader(const http::Request& request,
                                           const HttpAccessPolicy& policy);

// GET /metrics: `registry`'s text exposition; with a federation in
// `policy`, the read-only dashboard too (coordinator/dashboard_pages.h):
// the pages /, /runs, /runs/ID, /sites, /audit (?kind=&actor=&run=) and the
// JSON of /api/runs, /api/runs/ID, /api/sites. Every path goes through the
// same access check. `registry` (not owned) must outlive the routes; so
// must the policy's federation and clock.
http::Routes CoordinatorHttpRoutes(const metrics::MetricRegistry* registry,
                                   HttpAccessPolicy policy);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_COORDINATOR_HTTP_H_
