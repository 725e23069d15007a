// ProjectCa: a project's certificate authority, kept in a project directory
// (see project_layout.h), and the certificates it issues for mutual TLS.
//
// Every party gets an ECDSA P-256 key and a certificate whose subject names
// the project (O), the party's role (OU) and its name (CN); the coordinator's
// certificate is for TLS servers (EKU serverAuth), the audit signer's for
// signing the audit log only (EKU kAuditSigningOid, identity.h), everyone
// else's for TLS clients (EKU clientAuth). Kits built from these certificates: kits.h.
//
// Immutable after Create/Open; Issue may be called from several threads.
// Create takes the directory's ProvisionLock. Files go through the Env given
// (Env::Default() unless a test injects one), written whole or not at all;
// the CA key is created with mode 0600. Uses OpenSSL's libcrypto; no OpenSSL
// type appears in this header.
#ifndef FEDMI_COMMON_PROVISION_PROJECT_CA_H_
#define FEDMI_COMMON_PROVISION_PROJECT_CA_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/env.h"
#include "common/crypto/identity.h"

namespace fedmi {

struct IssueOptions {
  int days = 365;
  // Shifts the validity window; tests use negative values to make
  // certificates that have already expired.
  absl::Duration start_offset = absl::ZeroDuration();
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

struct IssuedParty {
  std::string name;
  PartyRole role;
  std::string key_pem;  // PKCS#8, unencrypted
  std::string cert_pem;
  CertificateInfo info;
};

// A certificate the CA has revoked, as its CRL lists it.
struct RevokedSerial {
  std::string serial_hex;  // CertificateInfo::serial_hex
  absl::Time revoked_at;
};

class ProjectCa {
 public:
  // Creates <dir>/ca/ca.key (mode 0600) and <dir>/ca/ca.crt: a self-signed
  // ECDSA P-256 CA (basicConstraints CA:TRUE critical, keyUsage keyCertSign and
  // cRLSign, CN "<project> fedmi CA", O project), valid for `days`.
  // AlreadyExists if the directory already holds a CA; InvalidArgument for a
  // bad project name or `days` < 1. After a failure the directory holds no
  // (partial) CA.
  static absl::StatusOr<std::unique_ptr<ProjectCa>> Create(const std::string& dir,
                                                           const std::string& project,
                                                           int days = 3650,
                                                           Env& env = *Env::Default());
  // Loads the CA in `dir`. NotFound if there is none; InvalidArgument if its
  // key does not belong to its certificate.
  static absl::StatusOr<std::unique_ptr<ProjectCa>> Open(const std::string& dir,
                                                         Env& env = *Env::Default());

  const std::string& project() const { return project_; }
  const std::string& ca_cert_pem() const { return cert_pem_; }
  const CertificateInfo& ca_info() const { return info_; }

  // Issues a fresh ECDSA P-256 key and certificate: subject CN=name, OU=role,
  // O=project, a random 128-bit serial. An audit signer's has only the
  // audit-signing EKU. The coordinator's certificate has EKU
  // serverAuth and the SANs in `options` plus DNS:localhost and IP:127.0.0.1;
  // the others have EKU clientAuth and only the SANs in `options` (a party is
  // known by its CN, not by a host name). Validity starts at now +
  // start_offset (less five minutes for clock skew) and lasts `days`.
  // InvalidArgument for a bad name, SAN or `days`; FailedPrecondition if the
  // certificate would outlive the CA. Writes no file and records nothing.
  absl::StatusOr<IssuedParty> Issue(const std::string& name, PartyRole role,
                                    const IssueOptions& options) const;

  // A PEM X.509 v2 CRL signed with the CA key that lists `revoked`:
  // lastUpdate now, nextUpdate `days` later (when parties should expect a
  // newer one; fedmi does not enforce it). RevocationList::FromPem reads it.
  // InvalidArgument for a serial that is not hex or `days` out of range.
  // Writes no file.
  absl::StatusOr<std::string> SignCrl(const std::vector<RevokedSerial>& revoked,
                                      int days = 30) const;

 private:
  ProjectCa(std::string project, std::string key_pem, std::string cert_pem, CertificateInfo info)
      : project_(std::move(project)),
        key_pem_(std::move(key_pem)),
        cert_pem_(std::move(cert_pem)),
        info_(std::move(info)) {}

  std::string project_;
  std::string key_pem_;
  std::string cert_pem_;
  CertificateInfo info_;
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_PROVISION_PROJECT_CA_H_
