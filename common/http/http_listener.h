// A small HTTP/1.1 server and client over cpp-httplib (Debian's
// libcpp-httplib-dev), for the binaries' `--http` listeners: `/metrics` for
// Prometheus and the coordinator's dashboard. The adapter routes GET paths
// to handlers that return a status, a content type, headers and a body;
// what a path means, and who may read it, is the handlers' business.
//
// httplib.h pulls in OpenSSL and much else, so only http_listener.cc
// includes it; nothing of it appears here.
//
// TLS: with TlsServerOptions the listener speaks HTTPS only, and the TLS
// handshake itself refuses a client without a certificate issued by the
// given CA (the project CA): no request of such a client reaches a handler.
// A handler sees the peer certificate and decides on roles.
//
// Thread-safety: handlers run on the listener's worker threads, several at
// once; they must be thread-safe. Stopping (the destructor) waits for them.
//
// Signals: Listener::Start and an HTTPS Get set SIGPIPE to be ignored for
// the whole process, since OpenSSL's writes to a connection its peer closed
// would otherwise kill it.
#ifndef FEDMI_COMMON_HTTP_HTTP_LISTENER_H_
#define FEDMI_COMMON_HTTP_HTTP_LISTENER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedmi::http {

struct Request {
  std::string path;  // without the query string, percent-decoded
  std::string remote_address;
  // The client's certificate (PEM), already verified against the client CA
  // by the handshake; empty over plain HTTP.
  std::string peer_certificate_pem;
  // The query string's parameters, decoded ("?run=3&actor=a%20b"); the
  // first value of a name given twice.
  std::map<std::string, std::string> query;
  // The Host header as sent ("127.0.0.1:9100"); empty when absent.
  std::string host;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra response headers (e.g. Content-Security-Policy).
  std::map<std::string, std::string> headers;
};

using Handler = std::function<Response(const Request&)>;
// Exact paths ("/metrics"), and prefixes: a key ending in "/*" ("/runs/*")
// serves every path that starts with what precedes the '*' and goes on
// after it ("/runs/7", not "/runs/"). An exact key wins over a prefix, a
// longer prefix over a shorter one. Any other path is 404, any method but
// GET (and HEAD, which httplib answers from GET) 405.
using Routes = std::map<std::string, Handler>;

// The handler `routes` gives `path`, as above; null for none.
const Handler* FindRoute(const Routes& routes, absl::string_view path);

// Files in PEM, as a fedmi kit holds them.
struct TlsServerOptions {
  std::string cert_file;       // the server's certificate chain
  std::string key_file;        // its private key
  std::string client_ca_file;  // clients must present a certificate it issued
};

// HOST:PORT split; HOST may be a bracketed IPv6 address ("[::1]:9100"),
// returned without brackets. PORT 0..65535. InvalidArgument otherwise.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view host_port);

// "localhost", 127.0.0.0/8 and ::1: addresses no other machine can reach.
bool IsLoopbackHost(absl::string_view host);

// The host a listener on `host` binds: "localhost" in any case as
// 127.0.0.1, since IsLoopbackHost trusts the name without a lookup; other
// hosts as they are.
std::string BindHost(absl::string_view host);

// OK when `request`'s Host header names a loopback address, or is absent;
// PermissionDenied naming it otherwise. A plain-HTTP listener on loopback
// serves without identities, and a browser on the same machine also runs
// other sites' scripts: one whose name resolves to 127.0.0.1 (DNS
// rebinding) would read the pages as its own origin, and it sends its own
// name as Host. A local browser, a tunnel or Prometheus send a loopback one.
absl::Status CheckLoopbackHostHeader(const Request& request);

class Listener {
 public:
  // Binds `host_port` (port 0 picks a free one) and serves `routes` on a
  // thread of its own until destroyed. Plain HTTP without `tls`. Fails with
  // Unavailable when the address cannot be bound, InvalidArgument for a bad
  // address or TLS files that cannot be loaded.
  static absl::StatusOr<std::unique_ptr<Listener>> Start(
      const std::string& host_port, Routes routes,
      const std::optional<TlsServerOptions>& tls = std::nullopt);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int port() const;

  struct Impl;

 private:
  explicit Listener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A client's kit files for HTTPS; all empty means plain HTTP.
struct ClientTls {
  std::string ca_file;    // verifies the server; required for HTTPS
  std::string cert_file;  // the client certificate, optional
  std::string key_file;
};

// GETs `path` from `host`:`port`. Any HTTP status is a Response; a
// connection or TLS failure is Unavailable naming httplib's error.
absl::StatusOr<Response> Get(const std::string& host, int port, const std::string& path,
                             const std::optional<ClientTls>& tls = std::nullopt);

}  // namespace fedmi::http

#endif  // FEDMI_COMMON_HTTP_HTTP_LISTENER_H_
