#include "cli/audit_entry_text.h"

#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

TEST(SummarizeDetailTest, ShowsPairsInStoredOrderAndCuts) {
  EXPECT_EQ(SummarizeDetail(R"({"site":"site-1","reason":"round timeout"})"),
            R"(site=site-1 reason="round timeout")");
  EXPECT_EQ(SummarizeDetail(R"({"sites":["a","b"],"n":2})"), R"(sites=["a","b"] n=2)");
  EXPECT_EQ(SummarizeDetail("{}"), "");
  EXPECT_EQ(SummarizeDetail("not json"), "not json");
  EXPECT_EQ(SummarizeDetail(R"({"k":"0123456789"})", 10), "k=01234...");
  // A cut never splits a UTF-8 character ("é" is two bytes).
  EXPECT_EQ(SummarizeDetail(R"({"k":"abéééé"})", 8), "k=ab...");
}

TEST(ParseSinceTimeTest, AcceptsRfc3339AndDates) {
  ASSERT_THAT(ParseSinceTime("2026-11-28T10:00:00Z"), IsOk());
  EXPECT_EQ(*ParseSinceTime("2026-11-28T10:00:00Z"), absl::FromUnixSeconds(1795860000));
  EXPECT_EQ(*ParseSinceTime("2026-11-28T11:00:00+01:00"), absl::FromUnixSeconds(1795860000));
  EXPECT_EQ(*ParseSinceTime("2026-11-28"), absl::FromUnixSeconds(1795824000));
  EXPECT_THAT(ParseSinceTime("yesterday"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'yesterday'")));
  EXPECT_THAT(ParseSinceTime("2026-11-28 10:00"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RFC 3339")));
}

}  // namespace
}  // namespace fedmi::cli
