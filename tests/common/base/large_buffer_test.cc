#include "common/base/large_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace fedmi {
namespace {

TEST(LargeBufferTest, ReserveKeepsContentsAndSizeAndGivesRoom) {
  std::vector<char> buffer = {'a', 'b'};
  ReserveLargeBuffer(&buffer, kHugePageAdviceMinBytes * 2);
  EXPECT_GE(buffer.capacity(), kHugePageAdviceMinBytes * 2);
  EXPECT_EQ(buffer, (std::vector<char>{'a', 'b'}));
  const char* storage = buffer.data();
  ReserveLargeBuffer(&buffer, 16);  // room enough already: same storage
  EXPECT_EQ(buffer.data(), storage);
}

TEST(LargeBufferTest, ResizeGivesZerosEvenOverOldContents) {
  std::vector<char> buffer(100, 'x');
  ResizeLargeBuffer(&buffer, kHugePageAdviceMinBytes + 3);
  ASSERT_EQ(buffer.size(), kHugePageAdviceMinBytes + 3);
  EXPECT_TRUE(std::all_of(buffer.begin(), buffer.end(), [](char c) { return c == 0; }));
  ResizeLargeBuffer(&buffer, 5);
  EXPECT_EQ(buffer, std::vector<char>(5, 0));
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
