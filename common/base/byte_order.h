// Fixed-width big-endian integers appended to a byte string: the building
// block of the canonical encodings that fedmi hashes and signs (secure
// aggregation's key advertisements and shares, the audit log's entries,
// heads and receipts). Header-only; thread-safe.
#ifndef FEDMI_COMMON_BASE_BYTE_ORDER_H_
#define FEDMI_COMMON_BASE_BYTE_ORDER_H_

#include <cstdint>
#include <string>

namespace fedmi {

inline void AppendBigEndian32(std::string* out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

inline void AppendBigEndian64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_BYTE_ORDER_H_
