#include "common/crypto/identity.h"

#include <openssl/x509_vfy.h>

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/enum_names.h"
#include "common/base/status.h"
#include "common/crypto/revocation_list.h"
#include "common/crypto/x509.h"

namespace fedmi {
namespace {

using StorePtr = openssl::Ptr<X509_STORE, X509_STORE_free>;
using StoreCtxPtr = openssl::Ptr<X509_STORE_CTX, X509_STORE_CTX_free>;

// The names are in every certificate's OU and in issued.json.
constexpr EnumName<PartyRole> kPartyRoles[] = {{PartyRole::kCoordinator, "coordinator"},
                                               {PartyRole::kSite, "site"},
                                               {PartyRole::kAdmin, "admin"},
                                               {PartyRole::kAuditor, "auditor"},
                                               {PartyRole::kAuditSigner, "audit-signer"}};

std::string Quoted(const CertificateInfo& info) { return absl::StrCat("'", info.common_name, "'"); }

}  // namespace

const char* PartyRoleName(PartyRole role) { return NameOf(kPartyRoles, role); }

absl::StatusOr<PartyRole> ParsePartyRole(const std::string& name) {
  if (std::optional<PartyRole> role = ParseName(kPartyRoles, name)) return *role;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role '", name, "' (expected coordinator, site, admin, auditor or audit-signer)"));
}

absl::Status ValidatePartyName(const std::string& name, absl::string_view what) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      ok = false;
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", name, "' must be 1 to 64 characters of letters, digits, '.', '_' and '-'"));
  }
  return absl::OkStatus();
}

std::string FormatCertificateTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<CertificateInfo> ParseCertificatePem(const std::string& pem) {
  ASSIGN_OR_RETURN(x509::X509Ptr cert, x509::ReadCertificate(pem));
  return x509::Describe(cert.get());
}

absl::Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_pem,
                            absl::Time now) {
  ASSIGN_OR_RETURN(x509::X509Ptr cert, x509::ReadCertificate(cert_pem));
  absl::StatusOr<x509::X509Ptr> ca = x509::ReadCertificate(ca_pem);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("project CA: ", ca.status().message()));
  }
  ASSIGN_OR_RETURN(CertificateInfo info, x509::Describe(cert.get()));
  ASSIGN_OR_RETURN(CertificateInfo ca_info, x509::Describe(ca->get()));

  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return openssl::Error("setting up certificate verification");
  }
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) == 1) return absl::OkStatus();
  openssl::TakeErrors();

  const int error = X509_STORE_CTX_get_error(ctx.get());
  const bool about_ca = X509_STORE_CTX_get_error_depth(ctx.get()) > 0;
  const std::string subject = about_ca ? absl::StrCat("project CA '", ca_info.project, "'")
                                       : absl::StrCat("certificate ", Quoted(info));
  const CertificateInfo& failing = about_ca ? ca_info : info;
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return absl::PermissionDeniedError(
          absl::StrCat(subject, " expired at ", FormatCertificateTime(failing.not_after)));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return absl::PermissionDeniedError(absl::StrCat(subject, " is not valid before ",
                                                      FormatCertificateTime(failing.not_before)));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_AKID_SKID_MISMATCH:
      return absl::PermissionDeniedError(absl::StrCat(
          "certificate ", Quoted(info), " was not issued by project CA '", ca_info.project, "'"));
    default:
      return absl::PermissionDeniedError(
          absl::StrCat("certificate ", Quoted(info), " does not verify against project CA '",
                       ca_info.project, "': ", X509_verify_cert_error_string(error)));
  }
}

absl::Status VerifyPartyCertificate(const std::string& cert_pem, const std::string& ca_pem,
                                    const std::string& name, PartyRole role, absl::Time now,
                                    const RevocationList* revoked) {
  RETURN_IF_ERROR(VerifyIssuedBy(cert_pem, ca_pem, now));
  if (revoked != nullptr) RETURN_IF_ERROR(revoked->CheckCertificate(cert_pem));
  ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificatePem(cert_pem));
  if (!name.empty() && info.common_name != name) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate ", Quoted(info), " does not name '", name, "'"));
  }
  const char* wanted = PartyRoleName(role);
  if (info.role_name != wanted) {
    return absl::PermissionDeniedError(absl::StrCat("certificate ", Quoted(info), " holds the ",
                                                    info.role_name.empty() ? "no" : info.role_name,
                                                    " role, not ", wanted));
  }
  if (role == PartyRole::kAuditSigner) {
    if (!info.audit_signing || info.client_auth || info.server_auth) {
      return absl::PermissionDeniedError(
          absl::StrCat("certificate ", Quoted(info),
                       " must carry the audit-signing extended key usage and no TLS usage"));
    }
    return absl::OkStatus();
  }
  const bool server = role == PartyRole::kCoordinator;
  if (server ? !info.server_auth : !info.client_auth) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate ", Quoted(info), " lacks the extended key usage ",
                     server ? "serverAuth" : "clientAuth", " of a ", wanted));
  }
  return absl::OkStatus();
}

}  // namespace fedmi
