// Implements secagg.h: X25519 key agreement, HKDF, AES-256-GCM and the signed key
// advertisement.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/crypto/signing.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_internal.h"

namespace fedmi {
namespace secagg {
namespace {

using KdfPtr = openssl::Ptr<EVP_KDF, EVP_KDF_free>;
using KdfCtxPtr = openssl::Ptr<EVP_KDF_CTX, EVP_KDF_CTX_free>;

// HKDF info: tag, the round attempt, then the fields, each length-prefixed.
std::string DerivationInfo(const std::string &tag, const RoundId &id,
                           const std::vector<std::string> &fields) {
  std::string info;
  AppendField(&info, tag);
  info += RoundIdBytes(id);
  for (const std::string &field : fields) AppendField(&info, field);
  return info;
}

}  // namespace

// ---------------------------------------------------------------------------
// X25519.

absl::StatusOr<KeyPair> GenerateKeyPair() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY *raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return OpenSslError("X25519 key generation failed");
  }
  PkeyPtr pkey(raw);
  KeyPair pair;
  pair.private_key.resize(kKeySize);
  pair.public_key.resize(kKeySize);
  size_t private_len = kKeySize, public_len = kKeySize;
  if (EVP_PKEY_get_raw_private_key(pkey.get(),
                                   reinterpret_cast<unsigned char *>(pair.private_key.data()),
                                   &private_len) != 1 ||
      EVP_PKEY_get_raw_public_key(pkey.get(),
                                  reinterpret_cast<unsigned char *>(pair.public_key.data()),
                                  &public_len) != 1 ||
      private_len != kKeySize || public_len != kKeySize) {
    return OpenSslError("reading X25519 raw keys failed");
  }
  return pair;
}

absl::StatusOr<std::string> AgreeSharedSecret(const std::string &my_private,
                                              const std::string &peer_public) {
  RETURN_IF_ERROR(CheckKeySize(my_private, "X25519 private key"));
  RETURN_IF_ERROR(CheckKeySize(peer_public, "X25519 peer public key"));
  PkeyPtr mine(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, Bytes(my_private), my_private.size()));
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, Bytes(peer_public),
                                           peer_public.size()));
  if (mine == nullptr || peer == nullptr) return OpenSslError("loading X25519 keys failed");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    return OpenSslError("X25519 setup failed");
  }
  std::string secret(kKeySize, '\0');
  size_t len = secret.size();
  const int derived =
      EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char *>(secret.data()), &len);
  unsigned char any = 0;
  for (char c : secret) any |= static_cast<unsigned char>(c);
  // OpenSSL itself refuses an all-zero result; check again rather than rely on
  // it.
  if (derived != 1 || len != kKeySize || any == 0) {
    ERR_clear_error();
    OPENSSL_cleanse(secret.data(), secret.size());
    return absl::InvalidArgumentError(
        "X25519 shared secret is all zero: the "
        "peer public key is a low-order point");
  }
  return secret;
}

// ---------------------------------------------------------------------------
// HKDF.

absl::StatusOr<std::string> Hkdf(const std::string &secret, const std::string &salt,
                                 const std::string &info, size_t length) {
  if (secret.empty()) return absl::InvalidArgumentError("HKDF secret is empty");
  if (length == 0 || length > 255 * 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF-SHA256 output length must be 1..8160 bytes, got ", length));
  }
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) return OpenSslError("fetching HKDF failed");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (ctx == nullptr) return OpenSslError("creating HKDF context failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<char *>(secret.data()), secret.size());
  // An empty salt means "HashLen zeros" (RFC 5869), which OpenSSL also uses
  // when no salt is given.
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<char *>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  const_cast<char *>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char *>(out.data()), out.size(),
                     params) != 1) {
    return OpenSslError("HKDF-SHA256 failed");
  }
  return out;
}

std::string RoundIdBytes(const RoundId &id) {
  std::string out;
  AppendI64(&out, id.run_id);
  AppendU32(&out, static_cast<uint32_t>(id.round));
  AppendU32(&out, static_cast<uint32_t>(id.attempt));
  AppendField(&out, id.nonce);
  return out;
}

absl::StatusOr<std::string> DerivePairwiseMaskSeed(const std::string &shared_secret,
                                                   const RoundId &id) {
  RETURN_IF_ERROR(CheckKeySize(shared_secret, "shared secret"));
  return Hkdf(shared_secret, "", DerivationInfo("fedmi/secagg/pairwise-mask-seed/v2", id, {}),
              kKeySize);
}

absl::StatusOr<std::string> DeriveShareKey(const std::string &shared_secret, const RoundId &id,
                                           const std::string &sender,
                                           const std::string &recipient) {
  RETURN_IF_ERROR(CheckKeySize(shared_secret, "shared secret"));
  return Hkdf(shared_secret, "",
              DerivationInfo("fedmi/secagg/share-key/v2", id, {sender, recipient}), kKeySize);
}

std::string ShareAssociatedData(const RoundId &id, const std::string &sender,
                                const std::string &recipient) {
  return DerivationInfo("fedmi/secagg/share-bundle/v2", id, {sender, recipient});
}

// ---------------------------------------------------------------------------
// AES-256-GCM.

absl::StatusOr<std::string> Seal(const std::string &key32, const std::string &plaintext,
                                 const std::string &associated_data) {
  RETURN_IF_ERROR(CheckKeySize(key32, "AES-256-GCM key"));
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  unsigned char *nonce = reinterpret_cast<unsigned char *>(out.data());
  unsigned char *body = nonce + kNonceSize;
  if (RAND_bytes(nonce, kNonceSize) != 1) return OpenSslError("RAND_bytes");
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key32), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, body + plaintext.size()) !=
          1) {
    return OpenSslError("AES-256-GCM encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> Open(const std::string &key32, const std::string &sealed,
                                 const std::string &associated_data) {
  RETURN_IF_ERROR(CheckKeySize(key32, "AES-256-GCM key"));
  const absl::Status failed = absl::DataLossError(
      "secret share failed authentication (wrong key, or "
      "altered nonce, ciphertext, tag or "
      "associated data)");
  if (sealed.size() < kNonceSize + kTagSize) {
    return absl::DataLossError(absl::StrCat("secret share failed authentication: ", sealed.size(),
                                            " bytes cannot hold a nonce and tag"));
  }
  const size_t body_size = sealed.size() - kNonceSize - kTagSize;
  const unsigned char *nonce = Bytes(sealed);
  const unsigned char *body = nonce + kNonceSize;
  std::string tag = sealed.substr(kNonceSize + body_size);
  std::string plaintext(body_size, '\0');
  unsigned char *out = reinterpret_cast<unsigned char *>(plaintext.data());
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key32), nonce) != 1) {
    return OpenSslError("AES-256-GCM setup failed");
  }
  if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, body, static_cast<int>(body_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return failed;
  }
  return plaintext;
}

// ---------------------------------------------------------------------------
// Key advertisement.

std::string KeyAdvertisementBytes(const RoundId &id, const std::string &site,
                                  const std::string &cipher_public_key,
                                  const std::string &mask_public_key) {
  std::string out;
  AppendField(&out, "fedmi/secagg/key-advertisement/v2");
  out += RoundIdBytes(id);
  AppendField(&out, site);
  AppendField(&out, cipher_public_key);
  AppendField(&out, mask_public_key);
  return out;
}

absl::StatusOr<std::string> SignKeyAdvertisement(const std::string &key_pem, const RoundId &id,
                                                 const std::string &site,
                                                 const std::string &cipher_public_key,
                                                 const std::string &mask_public_key) {
  RETURN_IF_ERROR(CheckKeySize(cipher_public_key, "cipher public key"));
  RETURN_IF_ERROR(CheckKeySize(mask_public_key, "mask public key"));
  return SignWithKeyPem(key_pem,
                        KeyAdvertisementBytes(id, site, cipher_public_key, mask_public_key));
}

absl::Status VerifyKeyAdvertisement(const std::string &cert_pem, const RoundId &id,
                                    const std::string &site, const std::string &cipher_public_key,
                                    const std::string &mask_public_key,
                                    const std::string &signature) {
  RETURN_IF_ERROR(CheckKeySize(cipher_public_key, "cipher public key"));
  RETURN_IF_ERROR(CheckKeySize(mask_public_key, "mask public key"));
  ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificatePem(cert_pem));
  if (info.common_name != site) {
    return absl::PermissionDeniedError(absl::StrCat("key advertisement is for site '", site,
                                                    "' but the certificate names '",
                                                    info.common_name, "'"));
  }
  return VerifyWithCertificatePem(
      cert_pem, KeyAdvertisementBytes(id, site, cipher_public_key, mask_public_key), signature);
}

}  // namespace secagg
}  // namespace fedmi
