#include "common/rpc/name_resolution.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fedmi {
namespace {

constexpr char kSystemResolver[] = "native";
constexpr char kLoopback[] = "127.0.0.1";
// gRPC words every failed lookup so, whichever resolver made it.
constexpr char kResolutionFailed[] = "DNS resolution failed";

}  // namespace

std::string UseSystemResolver() {
  // Without overwrite, a variable already set (by the operator, or by an
  // earlier call) is left alone, so only the first call changes environ.
  setenv(kDnsResolverVariable, kSystemResolver, /*overwrite=*/0);
  const char* value = std::getenv(kDnsResolverVariable);
  return value == nullptr ? kSystemResolver : value;
}

bool IsLocalhostName(absl::string_view host) {
  absl::ConsumeSuffix(&host, ".");
  return absl::EqualsIgnoreCase(host, "localhost");
}

std::string LocalhostAsLoopback(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return host_port;
  if (!IsLocalhostName(absl::string_view(host_port).substr(0, colon))) return host_port;
  return absl::StrCat(kLoopback, host_port.substr(colon));
}

std::string ExplainResolutionFailure(absl::string_view message) {
  if (!absl::StrContains(message, kResolutionFailed)) return std::string(message);
  return absl::StrCat(
      message,
      " (this host cannot resolve the name: check it with `getent hosts NAME`, the system "
      "resolver fedmi uses unless GRPC_DNS_RESOLVER says otherwise; add it to /etc/hosts or DNS, "
      "or dial the IP address the coordinator's certificate names)");
}

}  // namespace fedmi
