#include "common/rpc/channels.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/rpc/name_resolution.h"

namespace fedmi {
namespace {

constexpr char kTlsKeyType[] = "EC";
constexpr char kCipherSuitesVariable[] = "GRPC_SSL_CIPHER_SUITES";
// The only TLS 1.2 suite gRPC is offered: it needs an RSA certificate, so
// no handshake with fedmi's ECDSA certificates can complete with TLS 1.2.
constexpr char kRsaOnlySuite[] = "ECDHE-RSA-AES128-GCM-SHA256";

struct Identity {
  std::string ca_pem;
  std::string key_pem;
  std::string cert_pem;
};

absl::StatusOr<Identity> LoadIdentity(const TransportOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty() || options.ca_file.empty()) {
    return absl::FailedPreconditionError(
        "mutual TLS needs --cert, --key and --ca (a kit from `fedmi provision`); pass "
        "--insecure only for local experiments on a trusted network");
  }
  Identity identity;
  ASSIGN_OR_RETURN(identity.ca_pem, ReadFileToString(options.ca_file));
  ASSIGN_OR_RETURN(identity.key_pem, ReadFileToString(options.key_file));
  ASSIGN_OR_RETURN(identity.cert_pem, ReadFileToString(options.cert_file));
  // Fail here, with the file's name, rather than in an opaque handshake.
  auto info = ParseCertificatePem(identity.cert_pem);
  if (!info.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cert ", options.cert_file, ": ", info.status().message()));
  }
  if (info->key_type != kTlsKeyType) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--cert ", options.cert_file, " holds a ", info->key_type,
        " key; fedmi needs the ECDSA P-256 certificates `fedmi provision` issues, because "
        "with any other key type TLS 1.2 could be negotiated (docs/security.md)"));
  }
  if (absl::Status issued = VerifyIssuedBy(identity.cert_pem, identity.ca_pem, absl::Now());
      !issued.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--cert ", options.cert_file, ": ", issued.message()));
  }
  return identity;
}

std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> Provider(
    const Identity& identity) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  pairs.push_back({identity.key_pem, identity.cert_pem});
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(identity.ca_pem,
                                                                             pairs);
}

// Runs after the CA chain has been verified: also pins the exact server
// certificate a site's policy names.
class FingerprintVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit FingerprintVerifier(std::string expected) : expected_(std::move(expected)) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    auto info =
        ParseCertificatePem(std::string(request->peer_cert().data(), request->peer_cert().size()));
    if (!info.ok()) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "cannot read the coordinator's certificate");
    } else if (info->sha256_fingerprint != expected_) {
      *sync_status = grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          absl::StrCat("coordinator certificate fingerprint ", info->sha256_fingerprint,
                       " does not match the pinned ", expected_));
    } else {
      *sync_status = grpc::Status::OK;
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::string expected_;
};

grpc::ChannelArguments DefaultChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  return args;
}

}  // namespace

TlsFloor ApplyTlsFloor() {
  const char* operator_suites = std::getenv(kCipherSuitesVariable);
  if (operator_suites == nullptr || absl::string_view(operator_suites) == kRsaOnlySuite) {
    setenv(kCipherSuitesVariable, kRsaOnlySuite, /*overwrite=*/0);
    return TlsFloor::kTls13Only;
  }
  static std::once_flag warned;
  std::call_once(warned, [operator_suites] {
    FEDMI_LOG(WARNING) << kCipherSuitesVariable << " is set (" << operator_suites
                       << "): fedmi keeps the operator's TLS 1.2 cipher list, so TLS 1.2 is "
                          "refused only if none of those suites can work with ECDSA "
                          "certificates; unset it to have every connection use TLS 1.3";
  });
  return TlsFloor::kOperatorCipherSuites;
}

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
  UseSystemResolver();
  RETURN_IF_ERROR(CheckHostPort(target));
  grpc::ChannelArguments args = DefaultChannelArguments();
  const std::string dialled = LocalhostAsLoopback(target);
  // The :authority, and with it the name TLS checks, stay "localhost".
  if (dialled != target) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, target);
  if (options.insecure) {
    return grpc::CreateCustomChannel(dialled, grpc::InsecureChannelCredentials(), args);
  }
  ASSIGN_OR_RETURN(Identity identity, LoadIdentity(options));
  ApplyTlsFloor();
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(Provider(identity));
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_verify_server_certs(true);
  if (!options.server_fingerprint.empty()) {
    tls.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<FingerprintVerifier>(
            absl::AsciiStrToLower(options.server_fingerprint)));
    // The pin is stricter than a host name match; the address may be an IP.
    tls.set_check_call_host(false);
  }
  auto credentials = grpc::experimental::TlsCredentials(tls);
  if (credentials == nullptr) {
    return absl::InternalError("cannot build TLS channel credentials");
  }
  return grpc::CreateCustomChannel(dialled, credentials, args);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportOptions& options) {
  UseSystemResolver();
  if (options.insecure) return grpc::InsecureServerCredentials();
  ASSIGN_OR_RETURN(Identity identity, LoadIdentity(options));
  ApplyTlsFloor();
  grpc::experimental::TlsServerCredentialsOptions tls(Provider(identity));
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto credentials = grpc::experimental::TlsServerCredentials(tls);
  if (credentials == nullptr) {
    return absl::InternalError("cannot build TLS server credentials");
  }
  return credentials;
}

}  // namespace fedmi
