// The one file that includes httplib.h (Debian builds it as a shared library
// with OpenSSL, zlib and Brotli; CPPHTTPLIB_OPENSSL_SUPPORT comes from its
// pkg-config flags).
#include "common/http/http_listener.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fedmi::http {
namespace {

constexpr size_t kMaxRequestBodyBytes = 4096;

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

std::string PeerCertificatePem(const httplib::Request& request) {
  if (request.ssl == nullptr) return "";
  X509* cert = SSL_get1_peer_certificate(request.ssl);
  if (cert == nullptr) return "";
  std::string pem;
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio != nullptr && PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    pem.assign(data, static_cast<size_t>(size));
  }
  BIO_free(bio);
  X509_free(cert);
  return pem;
}

// Loads the server's kit into `ctx` and makes the handshake demand a client
// certificate the CA issued: without one the connection fails before any
// request is read.
bool SetUpTls(SSL_CTX& ctx, const TlsServerOptions& tls, std::string* error) {
  if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(&ctx, tls.cert_file.c_str()) != 1) {
    *error = absl::StrCat("cannot load certificate ", tls.cert_file, ": ", OpenSslError());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(&ctx) != 1) {
    *error = absl::StrCat("cannot load key ", tls.key_file, ": ", OpenSslError());
    return false;
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
  if (names == nullptr ||
      SSL_CTX_load_verify_locations(&ctx, tls.client_ca_file.c_str(), nullptr) != 1) {
    if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
    *error = absl::StrCat("cannot load CA ", tls.client_ca_file, ": ", OpenSslError());
    return false;
  }
  SSL_CTX_set_client_CA_list(&ctx, names);
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return true;
}

// OpenSSL writes to its sockets with write(2), not send(2) with
// MSG_NOSIGNAL, so a peer that closes a TLS connection mid-response would
// kill the whole process with SIGPIPE; the write's EPIPE is handled anyway.
void IgnoreSigpipe() { signal(SIGPIPE, SIG_IGN); }

}  // namespace

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host_port, "' is not HOST:PORT (e.g. 127.0.0.1:9100)"));
  }
  absl::string_view host = host_port.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return absl::InvalidArgumentError(absl::StrCat("'", host_port, "': unbalanced brackets"));
    }
    host = host.substr(1, host.size() - 2);
  } else if (absl::StrContains(host, ':')) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host_port, "': write an IPv6 address in brackets, [::1]:9100"));
  }
  int port = -1;
  if (!absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host_port, "': the port must be a number from 0 to 65535"));
  }
  return std::make_pair(std::string(host), port);
}

absl::Status CheckLoopbackHostHeader(const Request& request) {
  if (request.host.empty()) return absl::OkStatus();
  absl::string_view host = request.host;
  if (absl::StartsWith(host, "[")) {
    const size_t end = host.find(']');
    if (end != absl::string_view::npos) host = host.substr(1, end - 1);
  } else {
    host = host.substr(0, host.rfind(':'));
  }
  if (IsLoopbackHost(host)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("Host '", request.host,
                   "' is not a loopback name: the loopback listener answers only localhost, "
                   "127.0.0.0/8 and [::1]"));
}

std::string BindHost(absl::string_view host) {
  if (absl::AsciiStrToLower(host) == "localhost") return "127.0.0.1";
  return std::string(host);
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

const Handler* FindRoute(const Routes& routes, absl::string_view path) {
  auto exact = routes.find(std::string(path));
  if (exact != routes.end()) return &exact->second;
  const Handler* best = nullptr;
  size_t best_length = 0;
  for (const auto& [key, handler] : routes) {
    if (key.size() < 2 || key.compare(key.size() - 2, 2, "/*") != 0) continue;
    const absl::string_view prefix = absl::string_view(key).substr(0, key.size() - 1);
    if (path.size() > prefix.size() && absl::StartsWith(path, prefix) &&
        prefix.size() > best_length) {
      best = &handler;
      best_length = prefix.size();
    }
  }
  return best;
}

struct Listener::Impl {
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  int port = 0;
};

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(
    const std::string& host_port, Routes routes, const std::optional<TlsServerOptions>& tls) {
  auto split = SplitHostPort(host_port);
  if (!split.ok()) return split.status();
  auto [host, port] = *split;
  // Bind what IsLoopbackHost trusted, not what the resolver makes of the
  // name: a container without "localhost" in /etc/hosts could otherwise put
  // the unauthenticated listener on another interface.
  // "LOCALHOST" too: without a dot, the resolver may try it under the
  // search domains of resolv.conf, where it can name any machine.
  host = BindHost(host);
  IgnoreSigpipe();
  auto impl = std::make_unique<Impl>();
  if (tls.has_value()) {
    std::string error;
    impl->server = std::make_unique<httplib::SSLServer>(
        [&tls, &error](SSL_CTX& ctx) { return SetUpTls(ctx, *tls, &error); });
    if (!impl->server->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("HTTPS listener: ", error));
    }
  } else {
    impl->server = std::make_unique<httplib::Server>();
  }
  // httplib's default sets SO_REUSEPORT too, with which a second process
  // binds the same port and the two share its connections unnoticed.
  impl->server->set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  auto shared_routes = std::make_shared<const Routes>(std::move(routes));
  impl->server->Get(".*", [shared_routes](const httplib::Request& in, httplib::Response& out) {
    const Handler* route = FindRoute(*shared_routes, in.path);
    if (route == nullptr) {
      out.status = 404;
      out.set_content(absl::StrCat("no page at ", in.path, "\n"), "text/plain; charset=utf-8");
      return;
    }
    Request request;
    request.path = in.path;
    request.remote_address = in.remote_addr;
    request.peer_certificate_pem = PeerCertificatePem(in);
    for (const auto& [name, value] : in.params) request.query.emplace(name, value);
    request.host = in.get_header_value("Host");
    Response response = (*route)(request);
    out.status = response.status;
    for (const auto& [name, value] : response.headers) out.set_header(name, value);
    out.set_content(std::move(response.body), response.content_type.c_str());
  });
  const auto not_allowed = [](const httplib::Request&, httplib::Response& out) {
    out.status = 405;
    out.set_header("Allow", "GET, HEAD");
    out.set_content("read-only: only GET\n", "text/plain; charset=utf-8");
  };
  // httplib reads a request's whole body before routing, and by default
  // without a limit: a read-only listener needs none, so a large body is
  // refused with 413 before anyone is authorized.
  impl->server->set_payload_max_length(kMaxRequestBodyBytes);
  impl->server->Post(".*", not_allowed);
  impl->server->Put(".*", not_allowed);
  impl->server->Patch(".*", not_allowed);
  impl->server->Delete(".*", not_allowed);
  impl->server->Options(".*", not_allowed);

  if (port == 0) {
    impl->port = impl->server->bind_to_any_port(host);
  } else if (impl->server->bind_to_port(host, port)) {
    impl->port = port;
  } else {
    impl->port = -1;
  }
  if (impl->port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host_port, " (address in use or not local?)"));
  }
  httplib::Server* server = impl->server.get();
  impl->thread = std::thread([server] { server->listen_after_bind(); });
  // stop() before the loop runs would be lost and the destructor would wait
  // for ever, so Start returns only once it is serving.
  while (!server->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<Listener>(new Listener(std::move(impl)));
}

Listener::Listener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Listener::~Listener() {
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Listener::port() const { return impl_->port; }

absl::StatusOr<Response> Get(const std::string& host, int port, const std::string& path,
                             const std::optional<ClientTls>& tls) {
  std::unique_ptr<httplib::ClientImpl> client;
  if (tls.has_value()) {
    IgnoreSigpipe();
    auto ssl = std::make_unique<httplib::SSLClient>(host, port, tls->cert_file, tls->key_file);
    ssl->set_ca_cert_path(tls->ca_file.c_str());
    ssl->enable_server_certificate_verification(true);
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(host, port);
  }
  client->set_connection_timeout(10);
  client->set_read_timeout(30);
  httplib::Result result = client->Get(path.c_str());
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET ", host, ":", port, path, ": ", httplib::to_string(result.error())));
  }
  Response response;
  response.status = result->status;
  response.content_type = result->get_header_value("Content-Type");
  response.body = result->body;
  for (const auto& [name, value] : result->headers) response.headers.emplace(name, value);
  return response;
}

}  // namespace fedmi::http
