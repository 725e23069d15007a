// The pieces of Prometheus's text exposition format 0.0.4 that
// MetricRegistry::RenderText assembles: sample values and escaping.
// https://prometheus.io/docs/instrumenting/exposition_formats/
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_METRICS_EXPOSITION_TEXT_H_
#define FEDMI_COMMON_METRICS_EXPOSITION_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fedmi::metrics {

// A value as Prometheus parses it (Go's strconv.ParseFloat): "NaN", "+Inf",
// "-Inf"; integers below 1e15 in magnitude as plain digits ("1000000", not
// "1e+06"), so that counters read as counts; any other value in the
// shortest form that reads back as the same double, std::to_chars's choice
// of fixed or exponent notation ("0.1", "1e-07", "1e+15").
std::string FormatSampleValue(double value);

// A `# HELP` line's text: backslash and line feed escaped.
std::string EscapeHelpText(absl::string_view help);

// A label value between double quotes: backslash, double quote and line
// feed escaped.
std::string EscapeLabelValue(absl::string_view value);

// The format is UTF-8; help texts and label values are checked with this
// before they are kept. Refuses overlong forms, surrogates and code points
// above U+10FFFF.
bool IsValidUtf8(absl::string_view text);

}  // namespace fedmi::metrics

#endif  // FEDMI_COMMON_METRICS_EXPOSITION_TEXT_H_
