// Internal to common/provision: builds and signs X.509 certificates for the
// project CA (a self-signed CA certificate, TLS server and client
// certificates), and checks the host names and addresses put in them.
// Includes OpenSSL headers, so no public header may include it. Thread-safe.
#ifndef FEDMI_COMMON_PROVISION_CERTIFICATE_BUILDER_H_
#define FEDMI_COMMON_PROVISION_CERTIFICATE_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/crypto/x509.h"

namespace fedmi {

bool IsIpAddress(const std::string& text);
// InvalidArgument naming the value unless it is a DNS name / an IPv4 or IPv6
// address.
absl::Status ValidateDnsName(const std::string& name);
absl::Status ValidateIpAddress(const std::string& ip);

// What a leaf certificate's key is for (its extended key usage).
enum class KeyPurpose { kTlsClient, kTlsServer, kAuditSigning };

struct CertificateRequest {
  std::string common_name;
  std::string organizational_unit;  // empty for the CA
  std::string organization;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  KeyPurpose purpose = KeyPurpose::kTlsClient;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

// Makes and signs a certificate for `subject_key` with a random 128-bit
// serial. `issuer` null means self-signed with `subject_key`.
absl::StatusOr<x509::X509Ptr> MakeCertificate(const CertificateRequest& request,
                                              EVP_PKEY* subject_key, X509* issuer,
                                              EVP_PKEY* issuer_key);

}  // namespace fedmi

#endif  // FEDMI_COMMON_PROVISION_CERTIFICATE_BUILDER_H_
