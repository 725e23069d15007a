#include "common/metrics/metric_names.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fedmi::metrics {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

// Prometheus's grammar; `allow_colon` tells metric names from label names.
absl::Status CheckGrammar(absl::string_view kind, absl::string_view name, bool allow_colon) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " name is empty"));
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool allowed =
        IsAsciiLetter(c) || c == '_' || (allow_colon && c == ':') || (i > 0 && IsDigit(c));
    if (!allowed) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind, " name \"", name, "\" has '", absl::string_view(&name[i], 1),
                       "' at position ", i, "; Prometheus allows ",
                       allow_colon ? "[a-zA-Z_:][a-zA-Z0-9_:]*" : "[a-zA-Z_][a-zA-Z0-9_]*"));
    }
  }
  if (absl::StartsWith(name, "__")) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind, " name \"", name, "\" starts with \"__\", which Prometheus reserves for itself"));
  }
  for (char c : name) {
    if (IsUpper(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kind, " name \"", name, "\" has upper-case letters; names are lower-case snake_case"));
    }
  }
  return absl::OkStatus();
}

// promtool's list of unit abbreviations it asks to spell out.
constexpr absl::string_view kUnitAbbreviations[] = {"s",  "ms", "us", "ns", "sec", "b", "kb",
                                                    "mb", "gb", "tb", "pb", "m",   "h", "d"};
// Multiples of the base units fedmi measures in.
constexpr absl::string_view kUnitPrefixes[] = {
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi",
    "mega", "mebi", "mibi",  "giga",  "gibi",  "tera", "tebi", "peta",  "pebi"};
constexpr absl::string_view kTypeWords[] = {"counter", "gauge", "histogram", "summary", "untyped"};

// The base unit to use instead of `word`, or empty when `word` is no unit
// or already a base unit.
absl::string_view BaseUnitInsteadOf(absl::string_view word) {
  for (absl::string_view time_unit : {"minutes", "hours", "days", "weeks"}) {
    if (word == time_unit) return "seconds";
  }
  if (word == "bits") return "bytes";
  for (absl::string_view base : {"seconds", "bytes"}) {
    for (absl::string_view prefix : kUnitPrefixes) {
      if (word.size() == prefix.size() + base.size() && absl::StartsWith(word, prefix) &&
          absl::EndsWith(word, base)) {
        return base;
      }
    }
  }
  return "";
}

absl::Status CheckWords(absl::string_view name) {
  const std::vector<absl::string_view> words = absl::StrSplit(name, '_', absl::SkipEmpty());
  for (absl::string_view word : words) {
    for (absl::string_view type_word : kTypeWords) {
      if (word == type_word) {
        return absl::InvalidArgumentError(absl::StrCat("metric name \"", name,
                                                       "\" names a metric type (\"", word,
                                                       "\"); the type is on its own line"));
      }
    }
    for (absl::string_view abbreviation : kUnitAbbreviations) {
      if (word == abbreviation) {
        return absl::InvalidArgumentError(absl::StrCat("metric name \"", name,
                                                       "\" abbreviates a unit (\"", word,
                                                       "\"); spell out the base unit"));
      }
    }
    const absl::string_view base = BaseUnitInsteadOf(word);
    if (!base.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("metric name \"", name, "\" uses \"", word,
                                                     "\"; use the base unit \"", base, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

absl::Status ValidateMetricName(absl::string_view name, MetricType type) {
  if (absl::Status grammar = CheckGrammar("metric", name, /*allow_colon=*/true); !grammar.ok()) {
    return grammar;
  }
  if (name.find(':') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name \"", name, "\" has ':', which is reserved for recording rules"));
  }
  const bool ends_in_total = absl::EndsWith(name, "_total");
  if (type == MetricType::kCounter && !ends_in_total) {
    return absl::InvalidArgumentError(
        absl::StrCat("counter name \"", name, "\" does not end in \"_total\""));
  }
  if (type != MetricType::kCounter && ends_in_total) {
    return absl::InvalidArgumentError(absl::StrCat(MetricTypeName(type), " name \"", name,
                                                   "\" ends in \"_total\", which marks counters"));
  }
  for (absl::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(name, suffix)) {
      return absl::InvalidArgumentError(
          absl::StrCat(MetricTypeName(type), " name \"", name, "\" ends in \"", suffix,
                       "\", which histograms add to their own samples' names"));
    }
  }
  return CheckWords(name);
}

absl::Status ValidateLabelName(absl::string_view name) {
  if (absl::Status grammar = CheckGrammar("label", name, /*allow_colon=*/false); !grammar.ok()) {
    return grammar;
  }
  if (name == "le" || name == "quantile") {
    return absl::InvalidArgumentError(absl::StrCat(
        "label name \"", name, "\" is reserved for histogram buckets and summary quantiles"));
  }
  return absl::OkStatus();
}

}  // namespace fedmi::metrics
