#include "common/base/large_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace fedmi {
namespace {

TEST(LargeBufferTest, ReserveKeepsContentsAndSizeAndGivesRoom) {
  std::vector<char> buffer = {'a', 'b'};
  EXPECT_TRUE(ReserveLargeBuffer(&buffer, kHugePageAdviceMinBytes * 2));
  EXPECT_GE(buffer.capacity(), kHugePageAdviceMinBytes * 2);
  EXPECT_EQ(buffer, (std::vector<char>{'a', 'b'}));
  const char* storage = buffer.data();
  EXPECT_TRUE(ReserveLargeBuffer(&buffer, 16));  // room enough already: same storage
  EXPECT_EQ(buffer.data(), storage);
}

TEST(LargeBufferTest, ReservingMoreThanCanBeHadLeavesTheBufferAsItWas) {
  std::vector<char> buffer = {'a'};
  EXPECT_FALSE(ReserveLargeBuffer(&buffer, buffer.max_size() + 1));  // length_error
  EXPECT_EQ(buffer, std::vector<char>{'a'});
  EXPECT_TRUE(ReserveLargeBuffer(&buffer, 64));
}

TEST(LargeBufferTest, ResizeGivesZerosEvenOverOldContents) {
  std::vector<char> buffer(100, 'x');
  ResizeLargeBuffer(&buffer, kHugePageAdviceMinBytes + 3);
  ASSERT_EQ(buffer.size(), kHugePageAdviceMinBytes + 3);
  EXPECT_TRUE(std::all_of(buffer.begin(), buffer.end(), [](char c) { return c == 0; }));
  ResizeLargeBuffer(&buffer, 5);
  EXPECT_EQ(buffer, std::vector<char>(5, 0));
}

TEST(LargeBufferTest, HugePageRangeIsTheWholePagesInside) {
  constexpr uintptr_t kPage = kHugePageBytes;
  uintptr_t first = 0;
  uintptr_t last = 0;
  // Aligned at both ends: all of it.
  ASSERT_TRUE(HugePageRange(4 * kPage, 3 * kPage, &first, &last));
  EXPECT_EQ(first, 4 * kPage);
  EXPECT_EQ(last, 7 * kPage);
  // One byte past a boundary at the start, one byte short at the end.
  ASSERT_TRUE(HugePageRange(4 * kPage + 1, 3 * kPage - 2, &first, &last));
  EXPECT_EQ(first, 5 * kPage);
  EXPECT_EQ(last, 6 * kPage);
  // Ends exactly at a boundary.
  ASSERT_TRUE(HugePageRange(4 * kPage + 16, 2 * kPage - 16, &first, &last));
  EXPECT_EQ(first, 5 * kPage);
  EXPECT_EQ(last, 6 * kPage);
  // No whole page inside.
  EXPECT_FALSE(HugePageRange(4 * kPage + 1, kPage, &first, &last));
  EXPECT_FALSE(HugePageRange(4 * kPage, kPage - 1, &first, &last));
  EXPECT_FALSE(HugePageRange(4 * kPage, 0, &first, &last));
  // A range that would wrap around the address space.
  EXPECT_FALSE(HugePageRange(UINTPTR_MAX - 10, 3 * kPage, &first, &last));
}

TEST(LargeBufferTest, AdviceOnAnyRangeIsHarmless) {
  AdviseHugePages(nullptr, 0);
  char small[64] = {};
  AdviseHugePages(small, sizeof(small));
  std::vector<char> big(kHugePageAdviceMinBytes * 2, 7);
  AdviseHugePages(big.data() + 1, big.size() - 1);  // unaligned ends
  EXPECT_TRUE(std::all_of(big.begin(), big.end(), [](char c) { return c == 7; }));
}

}  // namespace
}  // namespace fedmi
