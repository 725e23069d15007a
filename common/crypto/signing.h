// ECDSA (P-256, SHA-256) signatures made with a party's private key and
// checked against its certificate: the audit log's seals and receipts and
// secure aggregation's signed keys use them. Keys for signing are kept
// apart from TLS keys by the callers (see docs/security.md).
//
// Thread-safe. Uses OpenSSL's libcrypto; no OpenSSL type appears in this
// header. Failures are Status values naming the cause.
#ifndef FEDMI_COMMON_CRYPTO_SIGNING_H_
#define FEDMI_COMMON_CRYPTO_SIGNING_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedmi {

// An ECDSA (P-256, SHA-256) signature over `data`, DER-encoded, made with the
// private key in `key_pem`. InvalidArgument if `key_pem` holds no EC key.
absl::StatusOr<std::string> SignWithKeyPem(const std::string& key_pem, absl::string_view data);

// A private key parsed once, for signing many messages as SignWithKeyPem
// does (OpenSSL 3 decodes a PEM key in hundreds of microseconds; signing
// with a parsed P-256 key takes tens). Thread-safe: Sign may run
// concurrently.
class SigningKey {
 public:
  // InvalidArgument for a key that does not parse.
  static absl::StatusOr<std::unique_ptr<SigningKey>> FromPem(const std::string& key_pem);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  absl::StatusOr<std::string> Sign(absl::string_view data) const;

 private:
  explicit SigningKey(void* key) : key_(key) {}
  void* key_;  // EVP_PKEY*, kept opaque so this header needs no OpenSSL
};

// OK if `signature` is the signature of `data` by the key of the certificate
// in `cert_pem`. PermissionDenied ("signature does not match certificate
// 'site-1'") for a wrong or malformed signature, InvalidArgument for a bad
// certificate. Checks the signature only, not who issued the certificate or
// when it expires: pair it with VerifyIssuedBy (identity.h).
absl::Status VerifyWithCertificatePem(const std::string& cert_pem, absl::string_view data,
                                      absl::string_view signature);

}  // namespace fedmi

#endif  // FEDMI_COMMON_CRYPTO_SIGNING_H_
