// Channel and server credentials. Mutual TLS 1.3 is the default: every
// party presents a certificate issued by the project CA (`fedmi provision`),
// and verifies the other side's against the same CA; TLS 1.2 is refused
// (ApplyTlsFloor) and identities must hold ECDSA keys. Plaintext exists
// only behind an explicit `insecure` (--insecure), for local experiments.
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

// How TLS 1.2 is kept out. gRPC 1.51 has no public setting for the minimum
// TLS version (its TlsCredentialsOptions has none; OpenSSL's floor is set
// to TLS 1.2 inside gRPC), so the one knob is the TLS 1.2 cipher list gRPC
// reads from GRPC_SSL_CIPHER_SUITES when the first credentials are built.
// TLS 1.3 suites are configured separately and stay untouched.
enum class TlsFloor {
  // The list holds one RSA-only suite, which can never complete with the
  // ECDSA certificates every fedmi identity must have: TLS 1.3 only.
  kTls13Only,
  // The operator set GRPC_SSL_CIPHER_SUITES: it is kept, as their choice,
  // and a warning is logged once; TLS 1.2 is then possible with a suite of
  // their list that works with ECDSA certificates.
  kOperatorCipherSuites,
};
// Sets the list unless the operator did. MakeChannel and
// MakeServerCredentials call it first; exposed for tests and start-up logs.
TlsFloor ApplyTlsFloor();

// Fails with InvalidArgument unless `address` looks like HOST:PORT.
absl::Status CheckHostPort(const std::string& address);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RPC_CHANNELS_H_
