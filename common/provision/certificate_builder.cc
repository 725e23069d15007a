#include "common/provision/certificate_builder.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

absl::Status AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return openssl::Error(absl::StrCat("setting subject ", field));
  }
  return absl::OkStatus();
}

absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  x509::ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (extension == nullptr || X509_add_ext(cert, extension.get(), -1) != 1) {
    return openssl::Error(absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::Status AddSubjectAltNames(X509* cert, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty()) return absl::OkStatus();
  // Built as structures rather than an "DNS:a,IP:b" config string, so that no
  // name can smuggle in another entry.
  x509::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  for (const std::string& dns : dns_names) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    ASN1_STRING_set(value, dns.data(), static_cast<int>(dns.size()));
    GENERAL_NAME_set0_value(name, GEN_DNS, value);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  for (const std::string& ip : ip_addresses) {
    ASN1_OCTET_STRING* value = a2i_IPADDRESS(ip.c_str());
    if (value == nullptr) return openssl::Error(absl::StrCat("encoding IP address ", ip));
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_IPADD, value);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return openssl::Error("adding subjectAltName");
  }
  return absl::OkStatus();
}

absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return openssl::Error("drawing a serial number");
  // Positive, and always 32 hex digits so that serials line up in tables.
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  x509::BignumPtr serial(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (serial == nullptr ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    return openssl::Error("setting the serial number");
  }
  return absl::OkStatus();
}

// Critical for the audit signer: a verifier that does not know the private
// purpose must refuse the certificate rather than take it for a TLS one.
std::string ExtendedKeyUsage(KeyPurpose purpose) {
  switch (purpose) {
    case KeyPurpose::kTlsServer:
      return "serverAuth";
    case KeyPurpose::kTlsClient:
      return "clientAuth";
    case KeyPurpose::kAuditSigning:
      return absl::StrCat("critical,", kAuditSigningOid);
  }
  return "clientAuth";
}

}  // namespace

bool IsIpAddress(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

absl::Status ValidateDnsName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 253 && name.front() != '.' && name.front() != '-';
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') ok = false;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name, "' is not a DNS name (letters, digits, '-' and '.', at most 253 characters)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateIpAddress(const std::string& ip) {
  if (!IsIpAddress(ip)) {
    return absl::InvalidArgumentError(absl::StrCat("'", ip, "' is not an IPv4 or IPv6 address"));
  }
  return absl::OkStatus();
}

absl::StatusOr<x509::X509Ptr> MakeCertificate(const CertificateRequest& request,
                                              EVP_PKEY* subject_key, X509* issuer,
                                              EVP_PKEY* issuer_key) {
  x509::X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1) return openssl::Error("X509_new");
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(request.not_before)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(request.not_after)) == nullptr) {
    return openssl::Error("setting the validity period");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddNameEntry(subject, "O", request.organization));
  if (!request.organizational_unit.empty()) {
    RETURN_IF_ERROR(AddNameEntry(subject, "OU", request.organizational_unit));
  }
  RETURN_IF_ERROR(AddNameEntry(subject, "CN", request.common_name));
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return openssl::Error("setting issuer and public key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  if (request.is_ca) {
    RETURN_IF_ERROR(
        AddConfExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    RETURN_IF_ERROR(
        AddConfExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  } else {
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_ext_key_usage,
                                     ExtendedKeyUsage(request.purpose).c_str()));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
    RETURN_IF_ERROR(
        AddConfExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
    RETURN_IF_ERROR(AddSubjectAltNames(cert.get(), request.dns_names, request.ip_addresses));
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : subject_key, EVP_sha256()) <= 0) {
    return openssl::Error("signing the certificate");
  }
  return cert;
}

}  // namespace fedmi
