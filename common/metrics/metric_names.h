// Which metric and label names fedmi's /metrics may carry.
//
// Two layers of rules, checked in this order so that the message names the
// first one broken:
//  1. Prometheus's grammar: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label
//     names [a-zA-Z_][a-zA-Z0-9_]*, and a leading "__" is reserved for
//     Prometheus's own use in both.
//  2. The conventions that `promtool check metrics` lints, because a name
//     that parses but fails the lint would fail the acceptance check of
//     /metrics: lower-case snake_case, no ':' (reserved for recording
//     rules), counters and only counters end in "_total", only histograms
//     end in "_bucket", "_sum" or "_count", no metric type as a word of the
//     name ("_gauge"), base units only ("_seconds" not "_milliseconds" or
//     "_ms", "_bytes" not "_kilobytes" or "_bits"), labels "le" and
//     "quantile" reserved for histograms and summaries.
//
// fedmi's own conventions (not enforced here, so that tests may use short
// names): every name starts with "fedmi_" (the coordinator) or
// "fedmi_client_" (fedmi-client); a quantity with a unit ends in that base
// unit, before "_total" for counters: fedmi_round_duration_seconds,
// fedmi_received_bytes_total; ratios such as AUC are plain numbers in
// [0, 1] with no suffix.
//
// Pure functions; thread-safe. Every refusal is InvalidArgument and quotes
// the name and the rule.
#ifndef FEDMI_COMMON_METRICS_METRIC_NAMES_H_
#define FEDMI_COMMON_METRICS_METRIC_NAMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fedmi::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter", "gauge", "histogram": the word on a `# TYPE` line.
const char* MetricTypeName(MetricType type);

// OK when `name` may name a family of `type`.
absl::Status ValidateMetricName(absl::string_view name, MetricType type);

// OK when `name` may name a label of a family of any type ("le" is refused:
// a histogram adds it itself).
absl::Status ValidateLabelName(absl::string_view name);

}  // namespace fedmi::metrics

#endif  // FEDMI_COMMON_METRICS_METRIC_NAMES_H_
