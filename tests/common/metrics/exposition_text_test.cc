#include "common/metrics/exposition_text.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "tests/common/metrics/exposition_checker.h"
#include "tests/test_util.h"

namespace fedmi::metrics {
namespace {

using ::fedmi::metrics::testing::CheckExposition;
using ::testing::HasSubstr;

TEST(ExpositionTextTest, FormatsSpecialValuesAsPrometheusSpellsThem) {
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(ExpositionTextTest, FormatsIntegersWithoutExponent) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(-0.0), "0");
  EXPECT_EQ(FormatSampleValue(7), "7");
  EXPECT_EQ(FormatSampleValue(-42), "-42");
  EXPECT_EQ(FormatSampleValue(1e6), "1000000");
  EXPECT_EQ(FormatSampleValue(1.5e9), "1500000000");
  EXPECT_EQ(FormatSampleValue(999999999999999.0), "999999999999999");
  // From 1e15 on, the shorter of the fixed and the exponent form.
  EXPECT_EQ(FormatSampleValue(1e15), "1e+15");
  EXPECT_EQ(FormatSampleValue(1.5e20), "1.5e+20");
  EXPECT_EQ(FormatSampleValue(123456789012345678.0), "123456789012345680");
}

TEST(ExpositionTextTest, FormatsFractionsInTheShortestForm) {
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");
  EXPECT_EQ(FormatSampleValue(2.5), "2.5");
  EXPECT_EQ(FormatSampleValue(-0.8125), "-0.8125");
  EXPECT_EQ(FormatSampleValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatSampleValue(1e-7), "1e-07");
  EXPECT_EQ(FormatSampleValue(1.5e300), "1.5e+300");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::denorm_min()), "5e-324");
}

TEST(ExpositionTextTest, EveryFormattedValueReadsBackExactly) {
  std::mt19937_64 random(16);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t bits = random();
    double value;
    std::memcpy(&value, &bits, sizeof(value));
    if (!std::isfinite(value)) continue;
    const std::string text = FormatSampleValue(value);
    const double read_back = std::strtod(text.c_str(), nullptr);
    EXPECT_EQ(read_back, value) << text;
  }
}

TEST(ExpositionTextTest, EscapesHelpText) {
  EXPECT_EQ(EscapeHelpText("plain \"quoted\" text"), "plain \"quoted\" text");
  EXPECT_EQ(EscapeHelpText("one\ntwo \\ three"), "one\\ntwo \\\\ three");
  EXPECT_EQ(EscapeHelpText("\\n"), "\\\\n");
}

TEST(ExpositionTextTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("st-mary's"), "st-mary's");
  EXPECT_EQ(EscapeLabelValue("a \"b\"\nc\\d"), "a \\\"b\\\"\\nc\\\\d");
  EXPECT_EQ(EscapeLabelValue(""), "");
}

TEST(ExpositionTextTest, ChecksUtf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("Hôpital Saint-Éloi, 東京, \xF0\x9F\x8F\xA5"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("a\x80z"));
}

// The checker the registry tests rely on must itself refuse bad text.
TEST(ExpositionCheckerTest, AcceptsWellFormedText) {
  EXPECT_THAT(CheckExposition(""), IsOk());
  EXPECT_THAT(CheckExposition("# HELP a_total Events \\\\ and\\n more.\n"
                              "# TYPE a_total counter\n"
                              "a_total{x=\"q\\\"\\n\\\\\",y=\"\"} 3\n"
                              "# HELP h Hist.\n"
                              "# TYPE h histogram\n"
                              "h_bucket{le=\"1\"} 1\n"
                              "h_bucket{le=\"+Inf\"} 2\n"
                              "h_sum 2.5\n"
                              "h_count 2\n"),
              IsOk());
}

TEST(ExpositionCheckerTest, RefusesBrokenText) {
  const std::string header = "# HELP g G.\n# TYPE g gauge\n";
  const std::string histogram = "# HELP h H.\n# TYPE h histogram\n";
  const struct {
    std::string text;
    const char* why;
  } cases[] = {
      {header + "g 1", "line feed"},
      {header + "\ng 1\n", "blank line"},
      {"# a comment\n", "comment"},
      {"# TYPE g gauge\ng 1\n", "TYPE before HELP"},
      {"# HELP g G.\ng 1\n", "before its family's HELP and TYPE"},
      {"# HELP g G.\n# TYPE g meter\n", "unknown type"},
      {"# HELP g bad \\t escape\n", "badly escaped"},
      {header + "g 1 1700000000\n", "timestamp"},
      {header + "g 1e6x\n", "value"},
      {header + "g inf\n", "value"},
      {header + "g{a=\"1\",a=\"2\"} 1\n", "label twice"},
      {header + "g{a=\"x\"\"} 1\n", "separated"},
      {header + "g{a=\"x\\q\"} 1\n", "bad escape"},
      {header + "g{a=\"x\",} 1\n", "trailing comma"},
      {header + "g{1a=\"x\"} 1\n", "bad label name"},
      {header + "g{} 1\n", "empty braces"},
      {header + "g 1\ng 2\n", "twice"},
      {header + "other 1\n", "differs from its family"},
      {header + "g{le=\"1\"} 1\n", "le outside a histogram"},
      {"# HELP c_total C.\n# TYPE c_total counter\nc_total -1\n", "below zero"},
      {header + "g 1\n# HELP x X.\n# TYPE x gauge\nx 1\n# HELP g G.\n", "two blocks"},
      {histogram + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "+Inf"},
      {histogram + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", "differs from _count"},
      {histogram + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n", "decreases"},
      {histogram + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n", "decreases"},
      {histogram + "h_bucket{le=\"+Inf\"} 1\nh_count 1\n", "lacks _sum"},
      {histogram + "h_sum 1\nh_bucket{le=\"+Inf\"} 1\n", "after _sum"},
      {histogram + "h_total 1\n", "not the histogram's"},
      {"# HELP g \xFF.\n", "UTF-8"},
  };
  for (const auto& broken : cases) {
    EXPECT_THAT(CheckExposition(broken.text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(broken.why)))
        << broken.text;
  }
}

}  // namespace
}  // namespace fedmi::metrics
