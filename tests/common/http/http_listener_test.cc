// The HTTP adapter over loopback: routing, status codes, content types, and
// HTTPS with a client certificate the handshake demands.
#include "common/http/http_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>

#include "common/provision/project_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::http {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(SplitHostPortTest, SplitsNamesIpv4AndBracketedIpv6) {
  ASSERT_OK_AND_ASSIGN(auto a, SplitHostPort("127.0.0.1:9100"));
  EXPECT_EQ(a.first, "127.0.0.1");
  EXPECT_EQ(a.second, 9100);
  ASSERT_OK_AND_ASSIGN(auto b, SplitHostPort("[::1]:0"));
  EXPECT_EQ(b.first, "::1");
  EXPECT_EQ(b.second, 0);
  ASSERT_OK_AND_ASSIGN(auto c, SplitHostPort("localhost:80"));
  EXPECT_EQ(c.first, "localhost");
}

TEST(SplitHostPortTest, RefusesMalformedAddresses) {
  for (const char* bad :
       {"9100", ":9100", "host:", "host:70000", "host:-1", "::1:9100", "[::1:9", "host:port"}) {
    EXPECT_FALSE(SplitHostPort(bad).ok()) << bad;
  }
}

// Every spelling IsLoopbackHost trusts as "localhost" binds loopback, not
// whatever the resolver makes of it.
TEST(BindHostTest, LocalhostInAnyCaseBindsLoopback) {
  for (const char* host : {"localhost", "LOCALHOST", "LocalHost"}) {
    ASSERT_TRUE(IsLoopbackHost(host)) << host;
    EXPECT_EQ(BindHost(host), "127.0.0.1") << host;
  }
  EXPECT_EQ(BindHost("0.0.0.0"), "0.0.0.0");
  EXPECT_EQ(BindHost("::1"), "::1");
  EXPECT_EQ(BindHost("example.org"), "example.org");
}

TEST(IsLoopbackHostTest, KnowsLoopbackFromOtherAddresses) {
  for (const char* host : {"localhost", "LOCALHOST", "127.0.0.1", "127.5.6.7", "::1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::ffff:127.0.0.1",
                           "example.org", "localhost.example.org", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

Routes EchoRoutes() {
  Routes routes;
  routes["/hello"] = [](const Request& request) {
    Response response;
    response.content_type = "text/x-test";
    response.body = request.peer_certificate_pem.empty() ? "hello, anonymous" : "hello, peer";
    return response;
  };
  routes["/teapot"] = [](const Request&) {
    return Response{418, "text/plain", "short and stout", {}};
  };
  return routes;
}

TEST(ListenerTest, RoutesGetPathsToHandlersAndAnswers404Otherwise) {
  ASSERT_OK_AND_ASSIGN(auto listener, Listener::Start("127.0.0.1:0", EchoRoutes()));
  ASSERT_GT(listener->port(), 0);

  ASSERT_OK_AND_ASSIGN(Response hello, Get("127.0.0.1", listener->port(), "/hello"));
  EXPECT_EQ(hello.status, 200);
  EXPECT_EQ(hello.content_type, "text/x-test");
  EXPECT_EQ(hello.body, "hello, anonymous");

  ASSERT_OK_AND_ASSIGN(Response teapot, Get("127.0.0.1", listener->port(), "/teapot"));
  EXPECT_EQ(teapot.status, 418);
  EXPECT_EQ(teapot.body, "short and stout");

  // Exact paths only: neither a prefix nor a longer path matches.
  for (const char* path : {"/", "/hell", "/hello/x", "/nothing"}) {
    ASSERT_OK_AND_ASSIGN(Response missing, Get("127.0.0.1", listener->port(), path));
    EXPECT_EQ(missing.status, 404) << path;
  }
}

TEST(FindRouteTest, ExactPathsWinOverPrefixesAndLongerPrefixesOverShorter) {
  Routes routes;
  const auto answer = [](std::string body) {
    return [body](const Request&) { return Response{200, "text/plain", body, {}}; };
  };
  routes["/runs"] = answer("list");
  routes["/runs/*"] = answer("one");
  routes["/runs/7"] = answer("seven");
  routes["/runs/7/*"] = answer("deeper");
  const auto served = [&routes](const char* path) -> std::string {
    const Handler* handler = FindRoute(routes, path);
    return handler == nullptr ? "404" : (*handler)(Request{}).body;
  };
  EXPECT_EQ(served("/runs"), "list");
  EXPECT_EQ(served("/runs/3"), "one");
  EXPECT_EQ(served("/runs/3/x"), "one");
  EXPECT_EQ(served("/runs/7"), "seven");
  EXPECT_EQ(served("/runs/7/rounds"), "deeper");
  // The prefix needs something after it, and "*" is no wildcard elsewhere.
  EXPECT_EQ(served("/runs/"), "404");
  EXPECT_EQ(served("/runsx"), "404");
  EXPECT_EQ(served("/run"), "404");
  EXPECT_EQ(served("/"), "404");
}

TEST(ListenerTest, PassesQueryParametersAndSendsHeaders) {
  Routes routes;
  routes["/items/*"] = [](const Request& request) {
    Response response{200, "text/plain", request.path, {{"X-Test", "yes"}}};
    for (const auto& [name, value] : request.query) {
      absl::StrAppend(&response.body, " ", name, "=", value);
    }
    return response;
  };
  ASSERT_OK_AND_ASSIGN(auto listener, Listener::Start("127.0.0.1:0", routes));
  ASSERT_OK_AND_ASSIGN(Response response,
                       Get("127.0.0.1", listener->port(), "/items/4?b=two%20words&a=1&a=2"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "/items/4 a=1 b=two words");
  EXPECT_EQ(response.headers["X-Test"], "yes");
  ASSERT_OK_AND_ASSIGN(Response root, Get("127.0.0.1", listener->port(), "/items/"));
  EXPECT_EQ(root.status, 404);
}

// What a client that sends a request by hand reads back: the status line.
std::string RawRequest(int port, const std::string& request) {
  const int sock = socket(AF_INET, SOCK_STREAM, 0);
  // A listener that waits for the announced body answers nothing: fail, do
  // not hang.
  timeval timeout{};
  timeout.tv_sec = 5;
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(sock);
    return "connect failed";
  }
  send(sock, request.data(), request.size(), MSG_NOSIGNAL);
  char reply[256] = {};
  const ssize_t got = recv(sock, reply, sizeof(reply) - 1, 0);
  close(sock);
  const std::string text(reply, got > 0 ? static_cast<size_t>(got) : 0);
  return text.substr(0, text.find("\r\n"));
}

// The Host header reaches handlers as sent (the coordinator refuses a
// non-loopback one on its loopback listener: DNS rebinding).
TEST(ListenerTest, PassesTheHostHeader) {
  Routes routes;
  routes["/host"] = [](const Request& request) {
    return Response{
        request.host == "attacker.example:8080" ? 200 : 400, "text/plain", request.host, {}};
  };
  ASSERT_OK_AND_ASSIGN(auto listener, Listener::Start("127.0.0.1:0", routes));
  EXPECT_EQ(RawRequest(listener->port(),
                       "GET /host HTTP/1.1\r\nHost: attacker.example:8080\r\n"
                       "Connection: close\r\n\r\n"),
            "HTTP/1.1 200 OK");
}

// A read-only listener reads no large body: httplib would otherwise hold
// whatever a client announces before any handler or role check runs.
TEST(ListenerTest, RefusesALargeRequestBodyBeforeReadingIt) {
  ASSERT_OK_AND_ASSIGN(auto listener, Listener::Start("127.0.0.1:0", EchoRoutes()));
  EXPECT_EQ(RawRequest(listener->port(),
                       "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nabc"),
            "HTTP/1.1 413 Payload Too Large");
  EXPECT_EQ(RawRequest(listener->port(),
                       "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
            "HTTP/1.1 405 Method Not Allowed");
}

TEST(ListenerTest, RefusesAnAddressInUse) {
  ASSERT_OK_AND_ASSIGN(auto first, Listener::Start("127.0.0.1:0", EchoRoutes()));
  auto second =
      Listener::Start(absl::StrCat("127.0.0.1:", first->port()), EchoRoutes(), std::nullopt);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ListenerTest, StopsWhenDestroyed) {
  int port = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto listener, Listener::Start("127.0.0.1:0", EchoRoutes()));
    port = listener->port();
  }
  EXPECT_EQ(Get("127.0.0.1", port, "/hello").status().code(), absl::StatusCode::kUnavailable);
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class HttpsListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "proj"));
    WriteFile(dir_.Join("ca.crt"), ca_->ca_cert_pem());
    Issue("coordinator", PartyRole::kCoordinator, *ca_, "server");
    Issue("admin-1", PartyRole::kAdmin, *ca_, "admin");
    ASSERT_OK_AND_ASSIGN(auto other, ProjectCa::Create(dir_.Join("other"), "other"));
    Issue("admin-1", PartyRole::kAdmin, *other, "stranger");
    TlsServerOptions tls{dir_.Join("server.crt"), dir_.Join("server.key"), dir_.Join("ca.crt")};
    ASSERT_OK_AND_ASSIGN(listener_, Listener::Start("127.0.0.1:0", EchoRoutes(), tls));
  }
  void Issue(const std::string& name, PartyRole role, const ProjectCa& ca,
             const std::string& file) {
    ASSERT_OK_AND_ASSIGN(IssuedParty party, ca.Issue(name, role, IssueOptions{}));
    WriteFile(dir_.Join(file + ".crt"), party.cert_pem);
    WriteFile(dir_.Join(file + ".key"), party.key_pem);
  }
  ClientTls As(const std::string& file) const {
    return ClientTls{dir_.Join("ca.crt"), dir_.Join(file + ".crt"), dir_.Join(file + ".key")};
  }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
  std::unique_ptr<Listener> listener_;
};

TEST_F(HttpsListenerTest, HandsTheVerifiedPeerCertificateToHandlers) {
  ASSERT_OK_AND_ASSIGN(Response hello, Get("127.0.0.1", listener_->port(), "/hello", As("admin")));
  EXPECT_EQ(hello.status, 200);
  EXPECT_EQ(hello.body, "hello, peer");
}

TEST_F(HttpsListenerTest, RefusesTheHandshakeWithoutAClientCertificate) {
  ClientTls anonymous{dir_.Join("ca.crt"), "", ""};
  EXPECT_EQ(Get("127.0.0.1", listener_->port(), "/hello", anonymous).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(HttpsListenerTest, RefusesACertificateOfAnotherCa) {
  EXPECT_EQ(Get("127.0.0.1", listener_->port(), "/hello", As("stranger")).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(HttpsListenerTest, ServesNoPlainHttp) {
  auto plain = Get("127.0.0.1", listener_->port(), "/hello");
  if (plain.ok()) {
    EXPECT_NE(plain->body, "hello, anonymous");
  }
}

TEST_F(HttpsListenerTest, RefusesAKeyThatIsNotTheCertificates) {
  TlsServerOptions mismatched{dir_.Join("server.crt"), dir_.Join("admin.key"), dir_.Join("ca.crt")};
  auto listener = Listener::Start("127.0.0.1:0", EchoRoutes(), mismatched);
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(listener.status().message(), HasSubstr("admin.key"));
}

}  // namespace
}  // namespace fedmi::http
