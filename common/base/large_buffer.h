// Large buffers that are written once per round (a downloaded model, a
// site's update, an accumulator) without a page fault per 4 KiB.
//
// glibc serves every block of 32 MiB or more from a fresh mmap and returns
// it to the kernel when freed, so such a buffer faults in page by page each
// time it is allocated. In a virtual machine a fault costs microseconds: at
// 8 sites x 11M parameters the sites' copies into fresh buffers took 40% of
// the machine (docs/performance.md). Transparent huge pages cut the faults
// 512-fold where the kernel offers them ("always" or "madvise" in
// /sys/kernel/mm/transparent_hugepage/enabled); elsewhere these are plain
// allocations. Thread-safe.
#ifndef FEDMI_COMMON_BASE_LARGE_BUFFER_H_
#define FEDMI_COMMON_BASE_LARGE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fedmi {

// Below this, advising is not worth a system call.
inline constexpr size_t kHugePageAdviceMinBytes = size_t{4} << 20;
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// The whole huge pages inside [begin, begin + size): [*first, *last), both
// multiples of kHugePageBytes; false when there is none.
bool HugePageRange(uintptr_t begin, size_t size, uintptr_t* first, uintptr_t* last);

// Asks the kernel to back the 2 MiB-aligned part of [data, data + size) with
// huge pages when it is first touched. Best effort: does nothing for small
// ranges or where the kernel declines.
void AdviseHugePages(void* data, size_t size);

// Gives `buffer` room for `bytes` (its contents and size unchanged), advising
// huge pages for storage it had to allocate. False, with `buffer` as it was,
// when that much memory cannot be had: a size read from the wire is a claim,
// and a false one must not end the process.
bool ReserveLargeBuffer(std::vector<char>* buffer, size_t bytes);

// `buffer` holding `bytes` zero bytes, its storage advised before the zeros
// are written.
void ResizeLargeBuffer(std::vector<char>* buffer, size_t bytes);

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_LARGE_BUFFER_H_
