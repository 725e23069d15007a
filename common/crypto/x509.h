// Internal to common/crypto and common/provision: PEM and X.509 with OpenSSL
// types, shared by the identity checks, signing and the project CA so that
// each parses certificates and keys the same way. Includes OpenSSL headers,
// so no public header may include it. Every function is thread-safe; errors
// come back as Status values and leave OpenSSL's error queue empty.
#ifndef FEDMI_COMMON_CRYPTO_X509_H_
#define FEDMI_COMMON_CRYPTO_X509_H_

#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/identity.h"
#include "common/crypto/openssl_util.h"

namespace fedmi::x509 {

void FreeBio(BIO* bio);
void FreeGeneralNames(GENERAL_NAMES* names);

using BioPtr = openssl::Ptr<BIO, FreeBio>;
using X509Ptr = openssl::Ptr<X509, X509_free>;
using BignumPtr = openssl::Ptr<BIGNUM, BN_free>;
using GeneralNamesPtr = openssl::Ptr<GENERAL_NAMES, FreeGeneralNames>;
using ExtensionPtr = openssl::Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using CrlPtr = openssl::Ptr<X509_CRL, X509_CRL_free>;

// The first certificate in `pem`; InvalidArgument if there is none.
absl::StatusOr<X509Ptr> ReadCertificate(const std::string& pem);
// An unencrypted EC private key (never prompts for a password);
// InvalidArgument for anything else.
absl::StatusOr<openssl::PkeyPtr> ReadPrivateKey(const std::string& pem);

// The first CRL in `pem`; InvalidArgument if there is none.
absl::StatusOr<CrlPtr> ReadCrl(const std::string& pem);

absl::StatusOr<std::string> CertificatePem(X509* cert);
absl::StatusOr<std::string> CrlPem(X509_CRL* crl);
absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key);
absl::StatusOr<openssl::PkeyPtr> GenerateP256Key();

// The first entry `nid` (NID_commonName, ...) of `name`; "" if absent.
std::string NameEntry(const X509_NAME* name, int nid);

// A serial number as CertificateInfo::serial_hex spells it (lower-case hex),
// so that CRL entries and certificates compare as strings.
absl::StatusOr<std::string> SerialHex(const ASN1_INTEGER* serial);

// What fedmi needs from `cert`: names, serial, validity, fingerprint, SANs.
absl::StatusOr<CertificateInfo> Describe(X509* cert);

}  // namespace fedmi::x509

#endif  // FEDMI_COMMON_CRYPTO_X509_H_
