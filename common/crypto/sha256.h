// Incremental SHA-256 (OpenSSL EVP). Not thread-safe; one per stream.
#ifndef FEDMI_COMMON_CRYPTO_SHA256_H_
#define FEDMI_COMMON_CRYPTO_SHA256_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace fedmi {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // The 32-byte digest. The hasher must not be used afterwards.
  std::string Final();

  static std::string Digest(absl::string_view data);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string HexEncode(absl::string_view bytes);
// Decodes lower- or upper-case hex; returns false on odd length or a non-hex digit.
bool HexDecode(absl::string_view hex, std::string* bytes);

}  // namespace fedmi

#endif  // FEDMI_COMMON_CRYPTO_SHA256_H_
