#include "common/crypto/signing.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/x509.h"

namespace fedmi {

absl::StatusOr<std::string> SignWithKeyPem(const std::string& key_pem, absl::string_view data) {
  ASSIGN_OR_RETURN(std::unique_ptr<SigningKey> key, SigningKey::FromPem(key_pem));
  return key->Sign(data);
}

absl::StatusOr<std::unique_ptr<SigningKey>> SigningKey::FromPem(const std::string& key_pem) {
  ASSIGN_OR_RETURN(openssl::PkeyPtr key, x509::ReadPrivateKey(key_pem));
  return std::unique_ptr<SigningKey>(new SigningKey(key.release()));
}

SigningKey::~SigningKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(key_)); }

absl::StatusOr<std::string> SigningKey::Sign(absl::string_view data) const {
  EVP_PKEY* key = static_cast<EVP_PKEY*>(key_);
  openssl::MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t size = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, bytes, data.size()) != 1) {
    return openssl::Error("signing");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, bytes,
                     data.size()) != 1) {
    return openssl::Error("signing");
  }
  signature.resize(size);
  return signature;
}

absl::Status VerifyWithCertificatePem(const std::string& cert_pem, absl::string_view data,
                                      absl::string_view signature) {
  ASSIGN_OR_RETURN(x509::X509Ptr cert, x509::ReadCertificate(cert_pem));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr) return openssl::Error("reading the certificate's public key");
  openssl::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return openssl::Error("setting up signature verification");
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  openssl::TakeErrors();
  if (rc != 1) {
    return absl::PermissionDeniedError(
        absl::StrCat("signature does not match certificate '",
                     x509::NameEntry(X509_get_subject_name(cert.get()), NID_commonName), "'"));
  }
  return absl::OkStatus();
}

}  // namespace fedmi
