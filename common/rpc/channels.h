// Channel and server credentials. Mutual TLS 1.3 is the default: every
// party presents a certificate issued by the project CA (`fedmi provision`),
// and verifies the other side's against the same CA; TLS 1.2 is refused. Plaintext exists only
// behind an explicit `insecure` (--insecure), for local experiments.
#ifndef FEDMI_COMMON_RPC_CHANNELS_H_
#define FEDMI_COMMON_RPC_CHANNELS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace fedmi {

struct TransportOptions {
  bool insecure = false;
  std::string cert_file;  // this party's certificate (PEM)
  std::string key_file;   // its private key (PEM)
  std::string ca_file;    // the project CA certificate (PEM)
  // The project CRL (PEM, LoadRevocationList); empty: none. The transport
  // does not read it: the parties check the certificates it lists.
  std::string crl_file;
  // Client only: when set, the server's certificate must also have this
  // SHA-256 fingerprint (lower-case hex), e.g. from a site's policy.
  std::string server_fingerprint;
};

// Channel to `target` ("host:port"). Tensors travel chunked, so gRPC's
// default 4 MiB message cap is kept deliberately.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const TransportOptions& options);
// Server side: requires and verifies a client certificate from the CA.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportOptions& options);

// Fails with InvalidArgument unless `address` looks like HOST:PORT.
absl::Status CheckHostPort(const std::string& address);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RPC_CHANNELS_H_
