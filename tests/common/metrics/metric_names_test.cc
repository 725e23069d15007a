#include "common/metrics/metric_names.h"

#include <string>

#include "tests/test_util.h"

namespace fedmi::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricNamesTest, AcceptsConventionalNames) {
  EXPECT_THAT(ValidateMetricName("fedmi_received_bytes_total", MetricType::kCounter), IsOk());
  EXPECT_THAT(ValidateMetricName("fedmi_round_duration_seconds", MetricType::kHistogram), IsOk());
  EXPECT_THAT(ValidateMetricName("fedmi_sites", MetricType::kGauge), IsOk());
  EXPECT_THAT(ValidateMetricName("_private2", MetricType::kGauge), IsOk());
  EXPECT_THAT(ValidateLabelName("site"), IsOk());
  EXPECT_THAT(ValidateLabelName("_x9"), IsOk());
}

struct RefusedName {
  const char* name;
  MetricType type;
  const char* why;
};

TEST(MetricNamesTest, RefusesNamesAgainstGrammarOrConventions) {
  const RefusedName cases[] = {
      {"", MetricType::kGauge, "empty"},
      {"9lives", MetricType::kGauge, "'9' at position 0"},
      {"fedmi-sites", MetricType::kGauge, "'-' at position 5"},
      {"fedmi sites", MetricType::kGauge, "' ' at position 5"},
      {"fedmi_sités", MetricType::kGauge, "[a-zA-Z_:][a-zA-Z0-9_:]*"},
      {"__fedmi_sites", MetricType::kGauge, "reserves"},
      {"fedmiSites", MetricType::kGauge, "upper-case"},
      {"fedmi:sites", MetricType::kGauge, "recording rules"},
      {"fedmi_updates", MetricType::kCounter, "does not end in \"_total\""},
      {"fedmi_sites_total", MetricType::kGauge, "marks counters"},
      {"fedmi_duration_seconds_total", MetricType::kHistogram, "marks counters"},
      {"fedmi_round_bucket", MetricType::kGauge, "\"_bucket\""},
      {"fedmi_round_sum", MetricType::kGauge, "\"_sum\""},
      {"fedmi_round_count", MetricType::kHistogram, "\"_count\""},
      {"fedmi_sites_gauge", MetricType::kGauge, "names a metric type"},
      {"fedmi_round_ms", MetricType::kHistogram, "abbreviates a unit (\"ms\")"},
      {"fedmi_sent_kb_total", MetricType::kCounter, "abbreviates a unit (\"kb\")"},
      {"fedmi_round_milliseconds", MetricType::kHistogram, "base unit \"seconds\""},
      {"fedmi_uptime_hours", MetricType::kGauge, "base unit \"seconds\""},
      {"fedmi_sent_megabytes_total", MetricType::kCounter, "base unit \"bytes\""},
      {"fedmi_sent_bits_total", MetricType::kCounter, "base unit \"bytes\""},
  };
  for (const RefusedName& refused : cases) {
    EXPECT_THAT(ValidateMetricName(refused.name, refused.type),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(refused.why)))
        << refused.name;
  }
}

TEST(MetricNamesTest, RefusesLabelNames) {
  EXPECT_THAT(ValidateLabelName(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(ValidateLabelName("site:name"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[a-zA-Z_][a-zA-Z0-9_]*")));
  EXPECT_THAT(ValidateLabelName("1site"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'1' at position 0")));
  EXPECT_THAT(ValidateLabelName("__name__"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reserves")));
  EXPECT_THAT(ValidateLabelName("siteName"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("upper-case")));
  EXPECT_THAT(ValidateLabelName("le"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("histogram buckets")));
  EXPECT_THAT(ValidateLabelName("quantile"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("summary quantiles")));
}

TEST(MetricNamesTest, NamesTypesAsTheTypeLineSpellsThem) {
  EXPECT_STREQ(MetricTypeName(MetricType::kCounter), "counter");
  EXPECT_STREQ(MetricTypeName(MetricType::kGauge), "gauge");
  EXPECT_STREQ(MetricTypeName(MetricType::kHistogram), "histogram");
}

}  // namespace
}  // namespace fedmi::metrics
