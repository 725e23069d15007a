// Implements secagg.h: Shamir secret sharing over GF(2^127 - 1).
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_internal.h"

namespace fedmi {
namespace secagg {
namespace {

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

}  // namespace

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

}  // namespace secagg
}  // namespace fedmi
