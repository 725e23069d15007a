#include "common/crypto/revocation_list.h"

#include <openssl/x509.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/crypto/x509.h"

namespace fedmi {
namespace {

absl::StatusOr<absl::Time> ToTime(const ASN1_TIME* time) {
  struct tm parts = {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CRL has an unreadable time: ", openssl::TakeErrors()));
  }
  return absl::FromTM(parts, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<RevocationList> RevocationList::FromPem(const std::string& crl_pem,
                                                       const std::string& ca_pem) {
  ASSIGN_OR_RETURN(x509::CrlPtr crl, x509::ReadCrl(crl_pem));
  absl::StatusOr<x509::X509Ptr> ca = x509::ReadCertificate(ca_pem);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("project CA: ", ca.status().message()));
  }
  const std::string project =
      x509::NameEntry(X509_get_subject_name(ca->get()), NID_organizationName);
  // Both checks: the issuer name says which CA the CRL claims to come from,
  // the signature proves it.
  EVP_PKEY* ca_key = X509_get0_pubkey(ca->get());
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca->get())) != 0 ||
      ca_key == nullptr || X509_CRL_verify(crl.get(), ca_key) != 1) {
    openssl::TakeErrors();
    return absl::PermissionDeniedError(
        absl::StrCat("CRL is not signed by project CA '", project, "'"));
  }
  RevocationList list;
  ASSIGN_OR_RETURN(list.issued_at_, ToTime(X509_CRL_get0_lastUpdate(crl.get())));
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    ASSIGN_OR_RETURN(
        std::string serial,
        x509::SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
    list.serials_.insert(std::move(serial));
  }
  return list;
}

absl::Status RevocationList::CheckCertificate(const std::string& cert_pem) const {
  ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificatePem(cert_pem));
  if (!Lists(info.serial_hex)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("certificate '", info.common_name, "' (serial ", info.serial_hex,
                   ") is revoked by the project CRL of ", FormatCertificateTime(issued_at_)));
}

absl::StatusOr<RevocationList> LoadRevocationList(const std::string& crl_path,
                                                  const std::string& ca_path, Env& env) {
  if (ca_path.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CRL '", crl_path, "' needs the project CA (--ca) to check it; not with --insecure"));
  }
  auto in_file = [&](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("CRL '", crl_path, "': ", status.message()));
  };
  absl::StatusOr<std::string> crl_pem = env.ReadFile(crl_path);
  if (!crl_pem.ok()) return in_file(crl_pem.status());
  absl::StatusOr<std::string> ca_pem = env.ReadFile(ca_path);
  if (!ca_pem.ok()) return in_file(ca_pem.status());
  absl::StatusOr<RevocationList> list = RevocationList::FromPem(*crl_pem, *ca_pem);
  if (!list.ok()) return in_file(list.status());
  return list;
}

}  // namespace fedmi
