#include "common/secagg/secagg.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/byte_order.h"
#include "common/base/status.h"
#include "common/crypto/openssl_util.h"
#include "common/crypto/pki.h"

namespace fedmi {
namespace secagg {
namespace {

// ---------------------------------------------------------------------------
// OpenSSL ownership and errors.

template <typename T, void (*Free)(T *)>
using OpenSslDeleter = openssl::Deleter<T, Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using CipherCtxPtr =
    std::unique_ptr<EVP_CIPHER_CTX, OpenSslDeleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, OpenSslDeleter<EVP_KDF, EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, OpenSslDeleter<EVP_KDF_CTX, EVP_KDF_CTX_free>>;

std::string TakeOpenSslErrors() { return openssl::TakeErrors(); }
absl::Status OpenSslError(const std::string &what) { return openssl::Error(what); }

absl::Status CheckKeySize(const std::string &key, const char *what) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be ", kKeySize, " bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

const unsigned char *Bytes(const std::string &s) {
  return reinterpret_cast<const unsigned char *>(s.data());
}

// ---------------------------------------------------------------------------
// Unambiguous encodings.

void AppendU32(std::string *out, uint32_t v) { AppendBigEndian32(out, v); }
void AppendI64(std::string *out, int64_t v) { AppendBigEndian64(out, static_cast<uint64_t>(v)); }
void AppendField(std::string *out, const std::string &field) {
  AppendU32(out, static_cast<uint32_t>(field.size()));
  out->append(field);
}
uint32_t ReadU32(const std::string &s, size_t pos) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  return v;
}

// HKDF info: tag, then the fields, each length-prefixed.
std::string DerivationInfo(const std::string &tag, int64_t run_id, int32_t round,
                           const std::vector<std::string> &fields) {
  std::string info;
  AppendField(&info, tag);
  AppendI64(&info, run_id);
  AppendU32(&info, static_cast<uint32_t>(round));
  for (const std::string &field : fields) AppendField(&info, field);
  return info;
}

// ---------------------------------------------------------------------------
// GF(2^127 - 1).

using u128 = unsigned __int128;
constexpr u128 kPrime = (static_cast<u128>(1) << 127) - 1;
constexpr size_t kChunkBytes = 15;    // 120 bits < 127
constexpr size_t kElementBytes = 16;  // serialized field element

// x < 2^128 → x mod p.
u128 Reduce(u128 x) {
  u128 r = (x & kPrime) + (x >> 127);
  return r >= kPrime ? r - kPrime : r;
}
u128 AddMod(u128 a, u128 b) {  // a, b < p: a + b < 2^128
  return Reduce(a + b);
}
u128 SubMod(u128 a, u128 b) { return a >= b ? a - b : a + (kPrime - b); }
u128 MulMod(u128 a, u128 b) {
  // a = ah 2^64 + al (ah < 2^63), likewise b; 2^128 = 2 (mod p).
  const uint64_t ah = static_cast<uint64_t>(a >> 64), al = static_cast<uint64_t>(a);
  const uint64_t bh = static_cast<uint64_t>(b >> 64), bl = static_cast<uint64_t>(b);
  const u128 hh = static_cast<u128>(ah) * bh;                                // < 2^126
  const u128 mid = static_cast<u128>(ah) * bl + static_cast<u128>(al) * bh;  // < 2^128
  const u128 ll = static_cast<u128>(al) * bl;
  const uint64_t mid_hi = static_cast<uint64_t>(mid >> 64), mid_lo = static_cast<uint64_t>(mid);
  // product = hh 2^128 + mid_hi 2^128 + mid_lo 2^64 + ll
  //        == 2 hh + 2 mid_hi + mid_lo 2^64 + ll (mod p)
  u128 r = Reduce(hh << 1);
  r = AddMod(r, Reduce(static_cast<u128>(mid_hi) << 1));
  r = AddMod(r, Reduce(static_cast<u128>(mid_lo) << 64));
  r = AddMod(r, Reduce(ll));
  return r;
}
u128 PowMod(u128 base, u128 exponent) {
  u128 result = 1;
  while (exponent != 0) {
    if (exponent & 1) result = MulMod(result, base);
    base = MulMod(base, base);
    exponent >>= 1;
  }
  return result;
}
u128 InvMod(u128 a) { return PowMod(a, kPrime - 2); }  // a != 0

absl::StatusOr<u128> RandomFieldElement() {
  for (;;) {
    unsigned char buf[16];
    if (RAND_bytes(buf, sizeof(buf)) != 1) return OpenSslError("RAND_bytes");
    u128 v = 0;
    for (int i = 15; i >= 0; --i) v = (v << 8) | buf[i];
    v &= kPrime;  // uniform in [0, 2^127); reject the single value p
    OPENSSL_cleanse(buf, sizeof(buf));
    if (v < kPrime) return v;
  }
}

void AppendElement(std::string *out, u128 v) {
  for (size_t i = 0; i < kElementBytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
u128 ReadElement(const std::string &s, size_t pos) {
  u128 v = 0;
  for (int i = static_cast<int>(kElementBytes) - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  }
  return v;
}
size_t ChunkCount(size_t secret_size) { return (secret_size + kChunkBytes - 1) / kChunkBytes; }

// Lagrange basis values at `at` for the points xs.
std::vector<u128> LagrangeAt(const std::vector<u128> &xs, u128 at) {
  std::vector<u128> basis(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    u128 num = 1, den = 1;
    for (size_t j = 0; j < xs.size(); ++j) {
      if (j == i) continue;
      num = MulMod(num, SubMod(at, xs[j]));
      den = MulMod(den, SubMod(xs[i], xs[j]));
    }
    basis[i] = MulMod(num, InvMod(den));
  }
  return basis;
}

// ---------------------------------------------------------------------------
// Masks.

constexpr size_t kMaskChunkWords = 4096;  // 16 KiB of keystream at a time

enum class MaskSign { kAdd, kSubtract };

absl::Status AddStream(const std::string &seed, MaskSign sign, uint32_t *words, size_t count,
                       uint64_t first_word) {
  ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(seed));
  if (first_word != 0) generator.Seek(first_word);
  uint32_t buffer[kMaskChunkWords];
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(kMaskChunkWords, count - done);
    generator.Fill(buffer, n);
    uint32_t *out = words + done;
    if (sign == MaskSign::kAdd) {
      for (size_t i = 0; i < n; ++i) out[i] += buffer[i];
    } else {
      for (size_t i = 0; i < n; ++i) out[i] -= buffer[i];
    }
    done += n;
  }
  OPENSSL_cleanse(buffer, sizeof(buffer));
  return absl::OkStatus();
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

absl::StatusOr<std::string> DerivePairwiseMaskSeed(const std::string &shared_secret, int64_t run_id,
                                                   int32_t round) {
  RETURN_IF_ERROR(CheckKeySize(shared_secret, "shared secret"));
  return Hkdf(shared_secret, "",
              DerivationInfo("fedmi/secagg/pairwise-mask-seed/v1", run_id, round, {}), kKeySize);
}

absl::StatusOr<std::string> DeriveShareKey(const std::string &shared_secret, int64_t run_id,
                                           int32_t round, const std::string &sender,
                                           const std::string &recipient) {
  RETURN_IF_ERROR(CheckKeySize(shared_secret, "shared secret"));
  return Hkdf(shared_secret, "",
              DerivationInfo("fedmi/secagg/share-key/v1", run_id, round, {sender, recipient}),
              kKeySize);
}

std::string ShareAssociatedData(int64_t run_id, int32_t round, const std::string &sender,
                                const std::string &recipient) {
  return DerivationInfo("fedmi/secagg/share-bundle/v1", run_id, round, {sender, recipient});
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
// MaskGenerator.

struct MaskGenerator::State {
  CipherCtxPtr ctx;
  std::string seed;
  ~State() { OPENSSL_cleanse(seed.data(), seed.size()); }
};

namespace {

[[noreturn]] void MaskFailure(const char *what) {
  // A mask that silently came out short or zero would publish a site's update;
  // stopping is the only safe answer to a broken cipher library.
  std::fprintf(stderr, "fedmi secagg: AES-256-CTR %s failed: %s\n", what,
               TakeOpenSslErrors().c_str());
  std::abort();
}

// (Re)starts the AES-256-CTR stream at block `block`.
bool StartStream(EVP_CIPHER_CTX *ctx, const std::string &seed, uint64_t block) {
  unsigned char iv[16] = {0};
  for (int i = 0; i < 8; ++i) iv[15 - i] = static_cast<unsigned char>(block >> (8 * i));
  return EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, Bytes(seed), iv) == 1;
}

// Encrypting a constant zero block avoids a separate pass clearing `out`.
constexpr size_t kZeroBytes = 64 * 1024;
const unsigned char kZeros[kZeroBytes] = {};

void Keystream(EVP_CIPHER_CTX *ctx, unsigned char *out, size_t bytes) {
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(kZeroBytes, bytes - done);
    int len = 0;
    if (EVP_EncryptUpdate(ctx, out + done, &len, kZeros, static_cast<int>(n)) != 1 ||
        static_cast<size_t>(len) != n) {
      MaskFailure("encryption");
    }
    done += n;
  }
}

}  // namespace

MaskGenerator::MaskGenerator(std::unique_ptr<State> state) : state_(std::move(state)) {}
MaskGenerator::MaskGenerator(MaskGenerator &&) noexcept = default;
MaskGenerator &MaskGenerator::operator=(MaskGenerator &&) noexcept = default;
MaskGenerator::~MaskGenerator() = default;

absl::StatusOr<MaskGenerator> MaskGenerator::Create(const std::string &seed) {
  RETURN_IF_ERROR(CheckKeySize(seed, "mask seed"));
  auto state = std::make_unique<State>();
  state->seed = seed;
  state->ctx.reset(EVP_CIPHER_CTX_new());
  if (state->ctx == nullptr || !StartStream(state->ctx.get(), seed, 0)) {
    return OpenSslError("AES-256-CTR setup failed");
  }
  return MaskGenerator(std::move(state));
}

void MaskGenerator::Fill(uint32_t *out, size_t count) {
  Keystream(state_->ctx.get(), reinterpret_cast<unsigned char *>(out), count * sizeof(uint32_t));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  for (size_t i = 0; i < count; ++i) out[i] = __builtin_bswap32(out[i]);
#endif
}

void MaskGenerator::Seek(uint64_t word_offset) {
  if (!StartStream(state_->ctx.get(), state_->seed, word_offset / 4)) MaskFailure("seek");
  unsigned char skip[16];
  Keystream(state_->ctx.get(), skip, (word_offset % 4) * sizeof(uint32_t));
}

// ---------------------------------------------------------------------------
// Shamir.

absl::StatusOr<std::vector<Share>> ShamirSplit(const std::string &secret, int threshold,
                                               int num_shares) {
  if (secret.empty()) return absl::InvalidArgumentError("cannot share an empty secret");
  if (num_shares < 1 || num_shares > kMaxShares) {
    return absl::InvalidArgumentError(
        absl::StrCat("number of shares must be 1..", kMaxShares, ", got ", num_shares));
  }
  if (threshold < 1 || threshold > num_shares) {
    return absl::InvalidArgumentError(absl::StrCat("threshold must be 1..", num_shares,
                                                   " (the number of shares), got ", threshold));
  }
  std::vector<Share> shares(num_shares);
  for (int i = 0; i < num_shares; ++i) {
    shares[i].x = i + 1;
    shares[i].secret_size = secret.size();
  }
  std::vector<u128> coefficients(threshold);
  for (size_t chunk = 0; chunk < ChunkCount(secret.size()); ++chunk) {
    u128 value = 0;
    const size_t begin = chunk * kChunkBytes;
    const size_t end = std::min(secret.size(), begin + kChunkBytes);
    for (size_t b = end; b > begin; --b)
      value = (value << 8) | static_cast<unsigned char>(secret[b - 1]);
    coefficients[0] = value;
    for (int c = 1; c < threshold; ++c) {
      ASSIGN_OR_RETURN(coefficients[c], RandomFieldElement());
    }
    for (Share &share : shares) {
      u128 y = 0;  // Horner
      for (int c = threshold - 1; c >= 0; --c) y = AddMod(MulMod(y, share.x), coefficients[c]);
      AppendElement(&share.y, y);
    }
  }
  // Coefficients are as secret as the secret itself.
  OPENSSL_cleanse(coefficients.data(), coefficients.size() * sizeof(u128));
  return shares;
}

absl::StatusOr<std::string> ShamirReconstruct(const std::vector<Share> &shares, int threshold) {
  if (threshold < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threshold must be >= 1, got ", threshold));
  }
  if (static_cast<int64_t>(shares.size()) < threshold) {
    return absl::FailedPreconditionError(
        absl::StrCat("need at least ", threshold, " shares, got ", shares.size()));
  }
  const size_t secret_size = shares[0].secret_size;
  const size_t chunks = ChunkCount(secret_size);
  std::set<int> seen;
  for (const Share &share : shares) {
    if (share.x < 1 || share.x > kMaxShares) {
      return absl::InvalidArgumentError(
          absl::StrCat("share x must be 1..", kMaxShares, ", got ", share.x));
    }
    if (!seen.insert(share.x).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate share x=", share.x));
    }
    if (secret_size == 0 || share.secret_size != secret_size ||
        share.y.size() != chunks * kElementBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "share x=", share.x, " holds a ", share.secret_size, "-byte secret in ", share.y.size(),
          " bytes; expected a ", secret_size, "-byte secret in ", chunks * kElementBytes));
    }
    for (size_t c = 0; c < chunks; ++c) {
      if (ReadElement(share.y, c * kElementBytes) >= kPrime) {
        return absl::InvalidArgumentError(
            absl::StrCat("share x=", share.x, " holds a value outside the field"));
      }
    }
  }
  std::vector<u128> xs(threshold);
  for (int i = 0; i < threshold; ++i) xs[i] = static_cast<u128>(shares[i].x);
  const std::vector<u128> at_zero = LagrangeAt(xs, 0);
  std::vector<std::vector<u128>> at_extra;
  for (size_t k = threshold; k < shares.size(); ++k) {
    at_extra.push_back(LagrangeAt(xs, static_cast<u128>(shares[k].x)));
  }

  std::string secret;
  secret.reserve(chunks * kChunkBytes);
  for (size_t c = 0; c < chunks; ++c) {
    u128 value = 0;
    for (int i = 0; i < threshold; ++i) {
      value = AddMod(value, MulMod(at_zero[i], ReadElement(shares[i].y, c * kElementBytes)));
    }
    for (size_t k = threshold; k < shares.size(); ++k) {
      u128 expected = 0;
      for (int i = 0; i < threshold; ++i) {
        expected = AddMod(expected, MulMod(at_extra[k - threshold][i],
                                           ReadElement(shares[i].y, c * kElementBytes)));
      }
      if (expected != ReadElement(shares[k].y, c * kElementBytes)) {
        return absl::DataLossError(absl::StrCat(
            "share x=", shares[k].x, " is inconsistent with the first ", threshold, " shares"));
      }
    }
    const size_t chunk_bytes = std::min(kChunkBytes, secret_size - c * kChunkBytes);
    if ((value >> (8 * chunk_bytes)) != 0) {
      return absl::DataLossError(
          "shares are inconsistent: the interpolated secret is out of range");
    }
    for (size_t b = 0; b < chunk_bytes; ++b) secret.push_back(static_cast<char>(value >> (8 * b)));
  }
  return secret;
}

std::string SerializeShare(const Share &share) {
  std::string out = "FSS1";
  AppendU32(&out, static_cast<uint32_t>(share.x));
  AppendU32(&out, static_cast<uint32_t>(share.secret_size));
  out += share.y;
  return out;
}

absl::StatusOr<Share> ParseShare(const std::string &bytes) {
  if (bytes.size() < 12 || bytes.compare(0, 4, "FSS1") != 0) {
    return absl::InvalidArgumentError("not a serialized secret share (missing 'FSS1' header)");
  }
  Share share;
  const uint32_t x = ReadU32(bytes, 4);
  share.secret_size = ReadU32(bytes, 8);
  share.y = bytes.substr(12);
  if (x < 1 || x > static_cast<uint32_t>(kMaxShares)) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret share has x=", x, ", outside 1..", kMaxShares));
  }
  share.x = static_cast<int>(x);
  if (share.secret_size == 0 || share.y.size() != ChunkCount(share.secret_size) * kElementBytes) {
    return absl::InvalidArgumentError(absl::StrCat("secret share of a ", share.secret_size,
                                                   "-byte secret has ", share.y.size(),
                                                   " bytes of values"));
  }
  for (size_t pos = 0; pos < share.y.size(); pos += kElementBytes) {
    if (ReadElement(share.y, pos) >= kPrime) {
      return absl::InvalidArgumentError("secret share holds a value outside the field");
    }
  }
  return share;
}

// ---------------------------------------------------------------------------
// Fixed point.

absl::StatusOr<FixedPointCodec> FixedPointCodec::Create(const QuantizationOptions &options) {
  if (!(options.clip > 0) || !std::isfinite(options.clip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization clip must be positive and finite, got ", options.clip));
  }
  if (options.max_sites < 1 || options.max_sites > (1 << 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization max_sites must be 1..16777216, got ", options.max_sites));
  }
  int site_bits = 0;  // ceil(log2(max_sites))
  while ((int64_t{1} << site_bits) < options.max_sites) ++site_bits;
  const int bits = 32 - site_bits;
  const int64_t levels = (int64_t{1} << (bits - 1)) - 1;
  return FixedPointCodec(options, bits, levels, options.clip / static_cast<double>(levels));
}

double FixedPointCodec::ErrorBound(int num_sites) const { return num_sites * step_ / 2; }

absl::Status FixedPointCodec::Encode(const float *in, size_t count, double weight,
                                     uint32_t *out) const {
  if (!(weight >= 0 && weight <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization weight must be in [0, 1], got ", weight));
  }
  const double clip = options_.clip;
  const double limit = static_cast<double>(levels_);
  for (size_t i = 0; i < count; ++i) {
    const double x = in[i];
    if (std::isnan(x)) {
      return absl::InvalidArgumentError(absl::StrCat("update element ", i, " is NaN"));
    }
    const double scaled = weight * std::clamp(x, -clip, clip) / step_;
    // Rounding cannot leave [-L, L] in exact arithmetic; clamp against the
    // last-bit error of the division.
    const int64_t q = static_cast<int64_t>(std::clamp(std::nearbyint(scaled), -limit, limit));
    out[i] = static_cast<uint32_t>(q);
  }
  return absl::OkStatus();
}

absl::Status FixedPointCodec::Decode(const uint32_t *sum, size_t count, int num_sites,
                                     double *out) const {
  if (num_sites < 1 || num_sites > options_.max_sites) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode a sum over ", num_sites,
                                                   " sites; max_sites is ", options_.max_sites));
  }
  const int64_t limit = levels_ * num_sites;
  for (size_t i = 0; i < count; ++i) {
    const int64_t q = static_cast<int32_t>(sum[i]);
    if (q > limit || q < -limit) {
      return absl::DataLossError(absl::StrCat("aggregate element ", i, " (", q,
                                              ") is outside what ", num_sites,
                                              " sites can produce; were all masks removed?"));
    }
    out[i] = static_cast<double>(q) * step_;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Neighbour graph.

absl::StatusOr<std::vector<std::vector<int>>> NeighbourGraph(int num_sites, int neighbours,
                                                             const std::string &seed32) {
  RETURN_IF_ERROR(CheckKeySize(seed32, "neighbour graph seed"));
  if (num_sites < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_sites must be >= 1, got ", num_sites));
  }
  if (neighbours < 1 && num_sites > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("each site needs at least 1 neighbour, got ", neighbours));
  }
  std::vector<std::set<int>> adjacency(num_sites);
  if (neighbours >= num_sites - 1) {
    for (int i = 0; i < num_sites; ++i) {
      for (int j = 0; j < num_sites; ++j) {
        if (i != j) adjacency[i].insert(j);
      }
    }
  } else {
    // A uniformly random cycle order: Fisher-Yates with unbiased draws from
    // an AES-CTR stream keyed by the seed.
    ASSIGN_OR_RETURN(MaskGenerator generator, MaskGenerator::Create(seed32));
    std::vector<int> order(num_sites);
    for (int i = 0; i < num_sites; ++i) order[i] = i;
    for (int i = num_sites - 1; i > 0; --i) {
      const uint64_t bound = static_cast<uint64_t>(i) + 1;
      // Draws at or above the largest multiple of `bound` would bias the
      // result.
      const uint64_t reject_from = (uint64_t{1} << 32) - (uint64_t{1} << 32) % bound;
      uint32_t draw;
      do {
        generator.Fill(&draw, 1);
      } while (draw >= reject_from);
      std::swap(order[i], order[draw % bound]);
    }
    int k = neighbours;
    if (k % 2 == 1 && num_sites % 2 == 1) ++k;
    const int half = k / 2;
    auto link = [&](int a, int b) {
      if (a == b) return;
      adjacency[a].insert(b);
      adjacency[b].insert(a);
    };
    for (int pos = 0; pos < num_sites; ++pos) {
      for (int d = 1; d <= half; ++d) link(order[pos], order[(pos + d) % num_sites]);
      if (k % 2 == 1) link(order[pos], order[(pos + num_sites / 2) % num_sites]);
    }
  }
  std::vector<std::vector<int>> graph(num_sites);
  for (int i = 0; i < num_sites; ++i) graph[i].assign(adjacency[i].begin(), adjacency[i].end());
  return graph;
}

// ---------------------------------------------------------------------------
// Masking.

absl::Status ApplyPairwiseMasks(int my_index, const std::vector<int> &neighbours,
                                const PairwiseSeedFn &shared_seed, uint32_t *words, size_t count,
                                uint64_t first_word) {
  std::set<int> seen;
  for (int peer : neighbours) {
    if (peer == my_index) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", my_index, " lists itself as a masking neighbour"));
    }
    if (!seen.insert(peer).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", my_index, " lists neighbour ", peer, " twice"));
    }
  }
  for (int peer : neighbours) {
    ASSIGN_OR_RETURN(std::string seed, shared_seed(peer));
    if (seed.size() != kKeySize) {
      return absl::InvalidArgumentError(absl::StrCat("pairwise seed of sites ", my_index, " and ",
                                                     peer, " must be ", kKeySize, " bytes, got ",
                                                     seed.size()));
    }
    absl::Status status = AddStream(seed, my_index < peer ? MaskSign::kAdd : MaskSign::kSubtract,
                                    words, count, first_word);
    OPENSSL_cleanse(seed.data(), seed.size());
    RETURN_IF_ERROR(status);
  }
  return absl::OkStatus();
}

absl::Status ApplySelfMask(const std::string &self_seed, uint32_t *words, size_t count,
                           uint64_t first_word) {
  RETURN_IF_ERROR(CheckKeySize(self_seed, "self-mask seed"));
  return AddStream(self_seed, MaskSign::kAdd, words, count, first_word);
}

absl::Status RemoveSelfMask(const std::string &self_seed, uint32_t *words, size_t count,
                            uint64_t first_word) {
  RETURN_IF_ERROR(CheckKeySize(self_seed, "self-mask seed"));
  return AddStream(self_seed, MaskSign::kSubtract, words, count, first_word);
}

absl::Status RemoveDroppedPairwiseMasks(int dropped_index,
                                        const std::vector<int> &surviving_neighbours,
                                        const PairwiseSeedFn &shared_seed, uint32_t *words,
                                        size_t count, uint64_t first_word) {
  // Survivor u added +PRG if u < d, -PRG otherwise; the dropped site d would
  // have added the opposite, which is exactly ApplyPairwiseMasks as d.
  return ApplyPairwiseMasks(dropped_index, surviving_neighbours, shared_seed, words, count,
                            first_word);
}

absl::Status RemoveMasks(const std::vector<std::vector<int>> &graph,
                         const std::vector<int> &survivors, const std::vector<int> &dropped,
                         const UnmaskingSecrets &secrets, uint32_t *words, size_t count,
                         uint64_t first_word) {
  const int num_sites = static_cast<int>(graph.size());
  enum class Fate { kUnknown, kSurvived, kDropped };
  std::vector<Fate> fate(num_sites, Fate::kUnknown);
  auto mark = [&](int site, Fate f) -> absl::Status {
    if (site < 0 || site >= num_sites) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", site, " is not in the ", num_sites, "-site neighbour graph"));
    }
    if (fate[site] != Fate::kUnknown) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", site, " is listed twice among survivors and dropped sites"));
    }
    fate[site] = f;
    return absl::OkStatus();
  };
  for (int s : survivors) RETURN_IF_ERROR(mark(s, Fate::kSurvived));
  for (int d : dropped) RETURN_IF_ERROR(mark(d, Fate::kDropped));
  for (int s : survivors) {
    for (int peer : graph[s]) {
      if (peer < 0 || peer >= num_sites || fate[peer] == Fate::kUnknown) {
        return absl::InvalidArgumentError(absl::StrCat(
            "survivor ", s, " has neighbour ", peer, ", which is neither a survivor nor dropped"));
      }
    }
  }

  for (int s : survivors) {
    ASSIGN_OR_RETURN(std::string seed, secrets.self_seed(s));
    absl::Status status = RemoveSelfMask(seed, words, count, first_word);
    OPENSSL_cleanse(seed.data(), seed.size());
    RETURN_IF_ERROR(status);
  }
  for (int d : dropped) {
    std::vector<int> surviving_neighbours;
    for (int peer : graph[d]) {
      if (peer >= 0 && peer < num_sites && fate[peer] == Fate::kSurvived) {
        surviving_neighbours.push_back(peer);
      }
    }
    RETURN_IF_ERROR(RemoveDroppedPairwiseMasks(
        d, surviving_neighbours, [&](int survivor) { return secrets.pairwise_seed(d, survivor); },
        words, count, first_word));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Key advertisement.

std::string KeyAdvertisementBytes(int64_t run_id, int32_t round, const std::string &site,
                                  const std::string &cipher_public_key,
                                  const std::string &mask_public_key) {
  std::string out;
  AppendField(&out, "fedmi/secagg/key-advertisement/v1");
  AppendI64(&out, run_id);
  AppendU32(&out, static_cast<uint32_t>(round));
  AppendField(&out, site);
  AppendField(&out, cipher_public_key);
  AppendField(&out, mask_public_key);
  return out;
}

absl::StatusOr<std::string> SignKeyAdvertisement(const std::string &key_pem, int64_t run_id,
                                                 int32_t round, const std::string &site,
                                                 const std::string &cipher_public_key,
                                                 const std::string &mask_public_key) {
  RETURN_IF_ERROR(CheckKeySize(cipher_public_key, "cipher public key"));
  RETURN_IF_ERROR(CheckKeySize(mask_public_key, "mask public key"));
  return SignWithKeyPem(
      key_pem, KeyAdvertisementBytes(run_id, round, site, cipher_public_key, mask_public_key));
}

absl::Status VerifyKeyAdvertisement(const std::string &cert_pem, int64_t run_id, int32_t round,
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
      cert_pem, KeyAdvertisementBytes(run_id, round, site, cipher_public_key, mask_public_key),
      signature);
}

}  // namespace secagg
}  // namespace fedmi
