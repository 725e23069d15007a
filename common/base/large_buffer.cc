#include "common/base/large_buffer.h"

#include <sys/mman.h>

#include <cstdint>

namespace fedmi {
namespace {

constexpr uintptr_t kHugePageBytes = uintptr_t{2} << 20;

}  // namespace

void AdviseHugePages(void* data, size_t size) {
#ifdef MADV_HUGEPAGE
  if (data == nullptr || size < kHugePageAdviceMinBytes) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const uintptr_t last = (begin + size) & ~(kHugePageBytes - 1);
  if (last <= first) return;
  // A refusal (THP off, an old kernel) leaves ordinary pages: nothing to do.
  (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)size;
#endif
}

void ReserveLargeBuffer(std::vector<char>* buffer, size_t bytes) {
  if (buffer->capacity() >= bytes) return;
  buffer->reserve(bytes);
  AdviseHugePages(buffer->data(), buffer->capacity());
}

void ResizeLargeBuffer(std::vector<char>* buffer, size_t bytes) {
  ReserveLargeBuffer(buffer, bytes);
  buffer->assign(bytes, 0);
}

}  // namespace fedmi
