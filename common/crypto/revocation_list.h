// RevocationList: the certificate serials a project CA has revoked, read
// from a PEM X.509 CRL that the CA signed (`fedmi provision crl`). The
// coordinator refuses callers whose certificate it lists, and sites refuse
// peers' key advertisements and the coordinator's admissions signed with
// such a certificate, without asking the coordinator's database.
//
// A plain value, immutable once read: copy it and share it across threads
// freely. Uses OpenSSL's libcrypto; no OpenSSL type appears here. A CRL is
// only as fresh as its last distribution: it says nothing about
// certificates revoked after it was signed.
#ifndef FEDMI_COMMON_CRYPTO_REVOCATION_LIST_H_
#define FEDMI_COMMON_CRYPTO_REVOCATION_LIST_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/env.h"

namespace fedmi {

class RevocationList {
 public:
  // Lists nothing: what a party without a CRL uses.
  RevocationList() = default;

  // Reads the CRL in `crl_pem` and checks it was issued and signed by the CA
  // certificate in `ca_pem`. InvalidArgument when either PEM does not parse;
  // PermissionDenied "CRL is not signed by project CA 'P'" when the issuer
  // name differs or the signature does not verify with the CA's key.
  static absl::StatusOr<RevocationList> FromPem(const std::string& crl_pem,
                                                const std::string& ca_pem);

  // Whether `serial_hex` (CertificateInfo::serial_hex) is listed.
  bool Lists(const std::string& serial_hex) const { return serials_.count(serial_hex) > 0; }
  // OK unless the first certificate in `cert_pem` is listed: then
  // PermissionDenied "certificate 'site-1' (serial 0a1b...) is revoked by the
  // project CRL of 2026-01-01T00:00:00Z". InvalidArgument for no certificate.
  absl::Status CheckCertificate(const std::string& cert_pem) const;

  const std::set<std::string>& serials() const { return serials_; }
  // When the CA signed it (the CRL's thisUpdate).
  absl::Time issued_at() const { return issued_at_; }

 private:
  std::set<std::string> serials_;
  absl::Time issued_at_ = absl::InfinitePast();
};

// What a party does at start with its `crl` setting: reads the CRL at
// `crl_path` and verifies it against the CA certificate at `ca_path`
// (FromPem). Errors name the file: "CRL 'crl.pem': CRL is not signed by
// project CA 'P'". FailedPrecondition when `ca_path` is empty (plaintext
// transport has no CA to check a CRL against).
absl::StatusOr<RevocationList> LoadRevocationList(const std::string& crl_path,
                                                  const std::string& ca_path,
                                                  Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_CRYPTO_REVOCATION_LIST_H_
