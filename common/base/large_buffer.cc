#include "common/base/large_buffer.h"

#include <sys/mman.h>

#include <new>
#include <stdexcept>

namespace fedmi {

bool HugePageRange(uintptr_t begin, size_t size, uintptr_t* first, uintptr_t* last) {
  const uintptr_t mask = ~(uintptr_t{kHugePageBytes} - 1);
  if (size > UINTPTR_MAX - begin || begin > UINTPTR_MAX - (kHugePageBytes - 1)) return false;
  *first = (begin + kHugePageBytes - 1) & mask;
  *last = (begin + size) & mask;
  return *first < *last;
}

void AdviseHugePages(void* data, size_t size) {
#ifdef MADV_HUGEPAGE
  if (data == nullptr || size < kHugePageAdviceMinBytes) return;
  uintptr_t first = 0;
  uintptr_t last = 0;
  if (!HugePageRange(reinterpret_cast<uintptr_t>(data), size, &first, &last)) return;
  // A refusal (THP off, an old kernel) leaves ordinary pages: nothing to do.
  (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)size;
#endif
}

bool ReserveLargeBuffer(std::vector<char>* buffer, size_t bytes) {
  if (buffer->capacity() >= bytes) return true;
  try {
    buffer->reserve(bytes);
  } catch (const std::bad_alloc&) {
    return false;
  } catch (const std::length_error&) {
    return false;
  }
  AdviseHugePages(buffer->data(), buffer->capacity());
  return true;
}

void ResizeLargeBuffer(std::vector<char>* buffer, size_t bytes) {
  ReserveLargeBuffer(buffer, bytes);
  buffer->assign(bytes, 0);
}

}  // namespace fedmi
