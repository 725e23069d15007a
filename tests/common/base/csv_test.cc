#include "common/base/csv.h"

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;

TEST(CsvTest, QuotesOnlyWhatNeedsQuoting) {
  EXPECT_EQ(CsvField("run.started"), "run.started");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField(R"({"a":1,"b":"x"})"), R"("{""a"":1,""b"":""x""}")");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField(" padded"), "\" padded\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
}

TEST(CsvTest, FieldsRoundTripThroughQuoting) {
  for (const char* text : {"plain", "a,b", "say \"hi\"", " padded ", ""}) {
    EXPECT_THAT(CsvFields(CsvField(text) + ",x"),
                ElementsAre(absl::StripAsciiWhitespace(text), "x"))
        << text;
  }
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
}

TEST(CsvTest, SplitsALineWithQuotesAndCarriageReturn) {
  EXPECT_THAT(CsvFields("1,\"unlabelled/a,b.png\",0.5,\r"),
              ElementsAre("1", "unlabelled/a,b.png", "0.5", ""));
  EXPECT_THAT(CsvFields(""), ElementsAre(""));
}

}  // namespace
}  // namespace fedmi
