// Internal to common/*.cc: ownership of OpenSSL objects and turning its
// error queue into a Status. Includes OpenSSL headers, so no public header
// may include it.
#ifndef FEDMI_COMMON_CRYPTO_OPENSSL_UTIL_H_
#define FEDMI_COMMON_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fedmi::openssl {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Ptr = std::unique_ptr<T, Deleter<T, Free>>;

using PkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtxPtr = Ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtxPtr = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using CipherCtxPtr = Ptr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

// Drains OpenSSL's thread-local error queue into one line, so an error never
// leaks into an unrelated later call.
inline std::string TakeErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

inline absl::Status Error(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", TakeErrors()));
}

}  // namespace fedmi::openssl

#endif  // FEDMI_COMMON_CRYPTO_OPENSSL_UTIL_H_
