#include "common/crypto/x509.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"

namespace fedmi::x509 {
namespace {

BioPtr ReadOnlyBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size > 0 ? static_cast<size_t>(size) : 0);
}

// Whether the certificate's extended key usage lists kAuditSigningOid.
// OpenSSL has no flag for a private purpose, so the list is read here.
bool HasAuditSigningUsage(X509* cert) {
  auto* usages =
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr));
  if (usages == nullptr) {
    openssl::TakeErrors();
    return false;
  }
  bool found = false;
  ASN1_OBJECT* wanted = OBJ_txt2obj(kAuditSigningOid, /*no_name=*/1);
  for (int i = 0; wanted != nullptr && i < sk_ASN1_OBJECT_num(usages); ++i) {
    if (OBJ_cmp(sk_ASN1_OBJECT_value(usages, i), wanted) == 0) found = true;
  }
  ASN1_OBJECT_free(wanted);
  EXTENDED_KEY_USAGE_free(usages);
  return found;
}

// Never prompts on the terminal for an encrypted key.
int NoPassword(char*, int, int, void*) { return 0; }

absl::Time AsnTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) {
    openssl::TakeErrors();
    return absl::InfinitePast();
  }
  return absl::FromTimeT(timegm(&tm));
}

std::string IpAddressText(const ASN1_OCTET_STRING* ip) {
  char text[INET6_ADDRSTRLEN] = {};
  const unsigned char* bytes = ASN1_STRING_get0_data(ip);
  int size = ASN1_STRING_length(ip);
  if (size == 4 && inet_ntop(AF_INET, bytes, text, sizeof(text)) != nullptr) return text;
  if (size == 16 && inet_ntop(AF_INET6, bytes, text, sizeof(text)) != nullptr) return text;
  return "";
}

}  // namespace

void FreeBio(BIO* bio) { BIO_free(bio); }
void FreeGeneralNames(GENERAL_NAMES* names) { sk_GENERAL_NAME_pop_free(names, GENERAL_NAME_free); }

absl::StatusOr<X509Ptr> ReadCertificate(const std::string& pem) {
  BioPtr bio = ReadOnlyBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a PEM certificate: ", openssl::TakeErrors()));
  }
  return cert;
}

absl::StatusOr<CrlPtr> ReadCrl(const std::string& pem) {
  BioPtr bio = ReadOnlyBio(pem);
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassword, nullptr));
  if (crl == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("not a PEM CRL: ", openssl::TakeErrors()));
  }
  return crl;
}

absl::StatusOr<openssl::PkeyPtr> ReadPrivateKey(const std::string& pem) {
  BioPtr bio = ReadOnlyBio(pem);
  openssl::PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an unencrypted PEM private key: ", openssl::TakeErrors()));
  }
  if (!EVP_PKEY_is_a(key.get(), "EC")) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an EC private key, got ", EVP_PKEY_get0_type_name(key.get())));
  }
  return key;
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return openssl::Error("writing certificate PEM");
  return BioContents(bio.get());
}

absl::StatusOr<std::string> CrlPem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_CRL(bio.get(), crl) != 1) return openssl::Error("writing CRL PEM");
  return BioContents(bio.get());
}

absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return openssl::Error("writing private key PEM");
  }
  return BioContents(bio.get());
}

absl::StatusOr<openssl::PkeyPtr> GenerateP256Key() {
  openssl::PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return openssl::Error("generating an ECDSA P-256 key");
  return key;
}

std::string NameEntry(const X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int size = ASN1_STRING_to_UTF8(&utf8, data);
  if (size < 0) {
    openssl::TakeErrors();
    return "";
  }
  std::string value(reinterpret_cast<char*>(utf8), size);
  OPENSSL_free(utf8);
  return value;
}

absl::StatusOr<std::string> SerialHex(const ASN1_INTEGER* serial) {
  BignumPtr number(ASN1_INTEGER_to_BN(serial, nullptr));
  if (number == nullptr) return openssl::Error("reading a serial number");
  char* hex = BN_bn2hex(number.get());
  if (hex == nullptr) return openssl::Error("printing a serial number");
  std::string text = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  return text;
}

absl::StatusOr<CertificateInfo> Describe(X509* cert) {
  CertificateInfo info;
  const X509_NAME* subject = X509_get_subject_name(cert);
  info.common_name = NameEntry(subject, NID_commonName);
  info.role_name = NameEntry(subject, NID_organizationalUnitName);
  info.project = NameEntry(subject, NID_organizationName);
  info.issuer_common_name = NameEntry(X509_get_issuer_name(cert), NID_commonName);

  ASSIGN_OR_RETURN(info.serial_hex, SerialHex(X509_get0_serialNumber(cert)));

  // UINT32_MAX: no extended-key-usage extension. fedmi's CA always sets one,
  // so a certificate without it is treated as good for neither side.
  const uint32_t usage = X509_get_extended_key_usage(cert);
  if (usage != UINT32_MAX) {
    info.client_auth = (usage & XKU_SSL_CLIENT) != 0;
    info.server_auth = (usage & XKU_SSL_SERVER) != 0;
    info.audit_signing = HasAuditSigningUsage(cert);
  }

  if (const EVP_PKEY* key = X509_get0_pubkey(cert); key != nullptr) {
    const char* type = EVP_PKEY_get0_type_name(key);
    info.key_type = type != nullptr ? type : "unknown";
  }

  info.not_before = AsnTime(X509_get0_notBefore(cert));
  info.not_after = AsnTime(X509_get0_notAfter(cert));

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_size) != 1) {
    return openssl::Error("hashing the certificate");
  }
  info.sha256_fingerprint =
      HexEncode(absl::string_view(reinterpret_cast<char*>(digest), digest_size));

  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                  ASN1_STRING_length(dns));
    } else if (name->type == GEN_IPADD) {
      std::string ip = IpAddressText(name->d.iPAddress);
      if (!ip.empty()) info.ip_addresses.push_back(std::move(ip));
    }
  }
  return info;
}

}  // namespace fedmi::x509
