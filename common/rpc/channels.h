// Channel and server credentials. Today only plaintext is implemented, and
// only behind an explicit --insecure; mutual TLS arrives with the trust work.
#ifndef FEDMI_COMMON_RPC_CHANNELS_H_
#define FEDMI_COMMON_RPC_CHANNELS_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace fedmi {

struct TransportOptions {
  bool insecure = false;
};

// Channel to `target` ("host:port") with fedmi's message limits: tensors are
// chunked, so the default 4 MiB cap is kept deliberately small.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const TransportOptions& options);
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportOptions& options);

// Fails with InvalidArgument unless `address` looks like HOST:PORT.
absl::Status CheckHostPort(const std::string& address);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RPC_CHANNELS_H_
