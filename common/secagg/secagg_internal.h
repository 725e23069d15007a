// Internal to common/secagg: the OpenSSL ownership types, argument checks
// and unambiguous byte encodings shared by the files implementing secagg.h
// (keys and AEAD, Shamir sharing, masks, fixed point). Includes OpenSSL
// headers, so no public header may include it. Stateless; thread-safe.
#ifndef FEDMI_COMMON_SECAGG_SECAGG_INTERNAL_H_
#define FEDMI_COMMON_SECAGG_SECAGG_INTERNAL_H_

#include <openssl/evp.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/byte_order.h"
#include "common/crypto/openssl_util.h"
#include "common/secagg/secagg.h"

namespace fedmi::secagg {

using openssl::CipherCtxPtr;
using openssl::PkeyCtxPtr;
using openssl::PkeyPtr;

inline std::string TakeOpenSslErrors() { return openssl::TakeErrors(); }
inline absl::Status OpenSslError(const std::string &what) { return openssl::Error(what); }

inline absl::Status CheckKeySize(const std::string &key, const char *what) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be ", kKeySize, " bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

inline const unsigned char *Bytes(const std::string &s) {
  return reinterpret_cast<const unsigned char *>(s.data());
}

// Unambiguous encodings: fixed-width big-endian integers, length-prefixed
// fields.
inline void AppendU32(std::string *out, uint32_t v) { AppendBigEndian32(out, v); }
inline void AppendI64(std::string *out, int64_t v) {
  AppendBigEndian64(out, static_cast<uint64_t>(v));
}
inline void AppendField(std::string *out, const std::string &field) {
  AppendU32(out, static_cast<uint32_t>(field.size()));
  out->append(field);
}
inline uint32_t ReadU32(const std::string &s, size_t pos) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  return v;
}

}  // namespace fedmi::secagg

#endif  // FEDMI_COMMON_SECAGG_SECAGG_INTERNAL_H_
