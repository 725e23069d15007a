#include "common/provision/project_ca.h"

#include <openssl/bn.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status.h"
#include "common/crypto/x509.h"
#include "common/provision/certificate_builder.h"
#include "common/provision/project_layout.h"
#include "common/provision/provision_lock.h"

namespace fedmi {
namespace {

constexpr absl::Duration kClockSkewAllowance = absl::Minutes(5);
constexpr int kMaxDays = 36500;

absl::Status ValidateDays(int days) {
  if (days < 1 || days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity must be 1 to ", kMaxDays, " days, got ", days));
  }
  return absl::OkStatus();
}

using Asn1TimePtr = openssl::Ptr<ASN1_TIME, ASN1_TIME_free>;
using Asn1IntegerPtr = openssl::Ptr<ASN1_INTEGER, ASN1_INTEGER_free>;
using RevokedPtr = openssl::Ptr<X509_REVOKED, X509_REVOKED_free>;

absl::StatusOr<Asn1TimePtr> Asn1Time(absl::Time time) {
  Asn1TimePtr asn1(ASN1_TIME_set(nullptr, absl::ToTimeT(time)));
  if (asn1 == nullptr) return openssl::Error("encoding a time");
  return asn1;
}

// One CRL entry; the caller owns it until X509_CRL_add0_revoked takes it.
absl::StatusOr<RevokedPtr> RevokedEntry(const RevokedSerial& revoked) {
  BIGNUM* number = nullptr;
  const size_t digits = revoked.serial_hex.size();
  if (digits == 0 || digits > 64 ||
      BN_hex2bn(&number, revoked.serial_hex.c_str()) != static_cast<int>(digits)) {
    BN_free(number);
    openssl::TakeErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("'", revoked.serial_hex, "' is not a certificate serial (hex)"));
  }
  x509::BignumPtr owned(number);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(owned.get(), nullptr));
  ASSIGN_OR_RETURN(Asn1TimePtr date, Asn1Time(revoked.revoked_at));
  RevokedPtr entry(X509_REVOKED_new());
  if (serial == nullptr || entry == nullptr ||
      X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
      X509_REVOKED_set_revocationDate(entry.get(), date.get()) != 1) {
    return openssl::Error("making a CRL entry");
  }
  return entry;
}

void AddUnique(std::vector<std::string>& list, const std::string& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

KeyPurpose PurposeOf(PartyRole role) {
  switch (role) {
    case PartyRole::kCoordinator:
      return KeyPurpose::kTlsServer;
    case PartyRole::kAuditSigner:
      return KeyPurpose::kAuditSigning;
    case PartyRole::kSite:
    case PartyRole::kAdmin:
    case PartyRole::kAuditor:
      return KeyPurpose::kTlsClient;
  }
  return KeyPurpose::kTlsClient;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProjectCa>> ProjectCa::Create(const std::string& dir,
                                                             const std::string& project, int days,
                                                             Env& env) {
  using project_layout::CaCertPath;
  using project_layout::CaKeyPath;
  RETURN_IF_ERROR(ValidatePartyName(project, "project name"));
  RETURN_IF_ERROR(ValidateDays(days));
  RETURN_IF_ERROR(env.CreateDirs(dir));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  if (env.FileExists(CaKeyPath(dir)) || env.FileExists(CaCertPath(dir))) {
    return absl::AlreadyExistsError(absl::StrCat("'", dir, "' already holds a project CA (",
                                                 CaCertPath(dir),
                                                 "); a project's CA is never replaced"));
  }
  const absl::Status made_ca_dir = env.CreateDir(project_layout::CaDir(dir), 0700);
  if (!made_ca_dir.ok() && !absl::IsAlreadyExists(made_ca_dir)) return made_ca_dir;

  ASSIGN_OR_RETURN(openssl::PkeyPtr key, x509::GenerateP256Key());
  const absl::Time now = absl::Now();
  CertificateRequest request;
  request.common_name = absl::StrCat(project, " fedmi CA");
  request.organization = project;
  request.not_before = now - kClockSkewAllowance;
  request.not_after = now + absl::Hours(24) * days;
  request.is_ca = true;
  ASSIGN_OR_RETURN(x509::X509Ptr cert, MakeCertificate(request, key.get(), nullptr, nullptr));
  ASSIGN_OR_RETURN(std::string key_pem, x509::PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(std::string cert_pem, x509::CertificatePem(cert.get()));
  ASSIGN_OR_RETURN(CertificateInfo info, x509::Describe(cert.get()));

  // The key first: a certificate without its key would look like a usable
  // CA. A key without its certificate would block the next attempt, so it
  // goes again if the certificate cannot be written.
  RETURN_IF_ERROR(WriteFileAtomically(env, CaKeyPath(dir), key_pem, 0600, Publish::kExclusive));
  const absl::Status wrote_cert =
      WriteFileAtomically(env, CaCertPath(dir), cert_pem, 0644, Publish::kExclusive);
  if (!wrote_cert.ok()) {
    env.RemoveFile(CaKeyPath(dir)).IgnoreError();
    return wrote_cert;
  }
  return std::unique_ptr<ProjectCa>(
      new ProjectCa(project, std::move(key_pem), std::move(cert_pem), std::move(info)));
}

absl::StatusOr<std::unique_ptr<ProjectCa>> ProjectCa::Open(const std::string& dir, Env& env) {
  using project_layout::CaCertPath;
  using project_layout::CaKeyPath;
  absl::StatusOr<std::string> cert_pem = env.ReadFile(CaCertPath(dir));
  if (absl::IsNotFound(cert_pem.status())) {
    return absl::NotFoundError(absl::StrCat("no project CA in '", dir, "' (", CaCertPath(dir),
                                            " is missing); run `fedmi provision init` first"));
  }
  RETURN_IF_ERROR(cert_pem.status());
  ASSIGN_OR_RETURN(std::string key_pem, env.ReadFile(CaKeyPath(dir)));
  ASSIGN_OR_RETURN(x509::X509Ptr cert, x509::ReadCertificate(*cert_pem));
  absl::StatusOr<openssl::PkeyPtr> key = x509::ReadPrivateKey(key_pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(CaKeyPath(dir), ": ", key.status().message()));
  }
  if (X509_check_private_key(cert.get(), key->get()) != 1) {
    openssl::TakeErrors();
    return absl::InvalidArgumentError(
        absl::StrCat(CaKeyPath(dir), " does not belong to ", CaCertPath(dir)));
  }
  ASSIGN_OR_RETURN(CertificateInfo info, x509::Describe(cert.get()));
  if (info.project.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(CaCertPath(dir), " names no project (no O in its subject)"));
  }
  std::string project = info.project;
  return std::unique_ptr<ProjectCa>(
      new ProjectCa(std::move(project), std::move(key_pem), std::move(*cert_pem), std::move(info)));
}

absl::StatusOr<IssuedParty> ProjectCa::Issue(const std::string& name, PartyRole role,
                                             const IssueOptions& options) const {
  RETURN_IF_ERROR(ValidatePartyName(name, absl::StrCat(PartyRoleName(role), " name")));
  RETURN_IF_ERROR(ValidateDays(options.days));
  CertificateRequest request;
  for (const std::string& dns : options.dns_names) {
    RETURN_IF_ERROR(ValidateDnsName(dns));
    AddUnique(request.dns_names, dns);
  }
  for (const std::string& ip : options.ip_addresses) {
    RETURN_IF_ERROR(ValidateIpAddress(ip));
    AddUnique(request.ip_addresses, ip);
  }
  request.purpose = PurposeOf(role);
  if (request.purpose == KeyPurpose::kTlsServer) {
    // Tools and tests on the coordinator's own machine dial it by loopback.
    AddUnique(request.dns_names, "localhost");
    AddUnique(request.ip_addresses, "127.0.0.1");
  }
  request.common_name = name;
  request.organizational_unit = PartyRoleName(role);
  request.organization = project_;
  const absl::Time now = absl::Now();
  const absl::Time start = now + options.start_offset;
  request.not_before = start - kClockSkewAllowance;
  request.not_after = start + absl::Hours(24) * options.days;
  if (info_.not_after <= now) {
    return absl::FailedPreconditionError(
        absl::StrCat("the project CA expired at ", FormatCertificateTime(info_.not_after)));
  }
  if (request.not_after > info_.not_after) {
    return absl::FailedPreconditionError(
        absl::StrCat("a certificate for ", options.days, " days would expire at ",
                     FormatCertificateTime(request.not_after), ", after the project CA (",
                     FormatCertificateTime(info_.not_after), "); issue it for fewer days"));
  }

  ASSIGN_OR_RETURN(x509::X509Ptr ca_cert, x509::ReadCertificate(cert_pem_));
  ASSIGN_OR_RETURN(openssl::PkeyPtr ca_key, x509::ReadPrivateKey(key_pem_));
  ASSIGN_OR_RETURN(openssl::PkeyPtr key, x509::GenerateP256Key());
  ASSIGN_OR_RETURN(x509::X509Ptr cert,
                   MakeCertificate(request, key.get(), ca_cert.get(), ca_key.get()));

  IssuedParty party;
  party.name = name;
  party.role = role;
  ASSIGN_OR_RETURN(party.key_pem, x509::PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(party.cert_pem, x509::CertificatePem(cert.get()));
  ASSIGN_OR_RETURN(party.info, x509::Describe(cert.get()));
  return party;
}

absl::StatusOr<std::string> ProjectCa::SignCrl(const std::vector<RevokedSerial>& revoked,
                                               int days) const {
  RETURN_IF_ERROR(ValidateDays(days));
  ASSIGN_OR_RETURN(x509::X509Ptr ca_cert, x509::ReadCertificate(cert_pem_));
  ASSIGN_OR_RETURN(openssl::PkeyPtr ca_key, x509::ReadPrivateKey(key_pem_));
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(Asn1TimePtr this_update, Asn1Time(now));
  ASSIGN_OR_RETURN(Asn1TimePtr next_update, Asn1Time(now + absl::Hours(24) * days));
  x509::CrlPtr crl(X509_CRL_new());
  if (crl == nullptr || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return openssl::Error("making a CRL");
  }
  for (const RevokedSerial& entry : revoked) {
    ASSIGN_OR_RETURN(RevokedPtr made, RevokedEntry(entry));
    if (X509_CRL_add0_revoked(crl.get(), made.get()) != 1)
      return openssl::Error("listing a serial");
    (void)made.release();  // the CRL owns it now
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) <= 0) {
    return openssl::Error("signing the CRL");
  }
  return x509::CrlPem(crl.get());
}

}  // namespace fedmi
