// How fedmi's binaries turn the host names they dial and listen on into
// addresses.
//
// gRPC's default resolver is its bundled c-ares, which reads /etc/hosts and
// /etc/resolv.conf itself and bypasses the system's name service switch
// (nss-myhostname, nss-resolve, mDNS, LDAP): on a minimal system without
// /etc/hosts it cannot resolve even "localhost" ("C-ares status is not
// ARES_SUCCESS ... Could not contact DNS servers"), and a server asked to
// listen on "localhost" fails wherever /etc/hosts lacks the name. Hence:
//   - names go to the system resolver (getaddrinfo), as for every other
//     program on the host (`getent hosts NAME` shows what fedmi will get);
//   - "localhost" is never looked up: RFC 6761 reserves it for loopback, so
//     it is dialled and bound as 127.0.0.1, while TLS still checks the name
//     "localhost" in the peer's certificate.
#ifndef FEDMI_COMMON_RPC_NAME_RESOLUTION_H_
#define FEDMI_COMMON_RPC_NAME_RESOLUTION_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fedmi {

// The variable gRPC reads, once, when it initialises.
inline constexpr char kDnsResolverVariable[] = "GRPC_DNS_RESOLVER";

// Sets GRPC_DNS_RESOLVER=native unless the operator set it (e.g. to "ares"),
// and returns the resolver in effect. It must run before gRPC initialises:
// MakeChannel and MakeServerCredentials call it first.
std::string UseSystemResolver();

// "localhost" in any case, with or without the root's trailing dot.
bool IsLocalhostName(absl::string_view host);

// "localhost:7000" as "127.0.0.1:7000"; any other address as it is.
std::string LocalhostAsLoopback(const std::string& host_port);

// The message of a failed connection, with what to check appended when the
// cause was a name that did not resolve; any other message as it is.
std::string ExplainResolutionFailure(absl::string_view message);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RPC_NAME_RESOLUTION_H_
