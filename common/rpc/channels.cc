#include "common/rpc/channels.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

absl::Status RequireInsecure(const TransportOptions& options) {
  if (!options.insecure) {
    return absl::FailedPreconditionError(
        "TLS credentials are not configured yet; pass --insecure to use plaintext on a "
        "trusted network (local experiments only)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' is not HOST:PORT (e.g. 127.0.0.1:7000)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const TransportOptions& options) {
  if (absl::Status status = CheckHostPort(target); !status.ok()) return status;
  if (absl::Status status = RequireInsecure(options); !status.ok()) return status;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportOptions& options) {
  if (absl::Status status = RequireInsecure(options); !status.ok()) return status;
  return grpc::InsecureServerCredentials();
}

}  // namespace fedmi
