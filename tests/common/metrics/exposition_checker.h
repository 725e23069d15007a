// A strict reader of Prometheus's text exposition format 0.0.4, for tests:
// it accepts what MetricRegistry::RenderText may write and names the first
// line that breaks the grammar or the format's rules. Stricter than
// Prometheus where fedmi never needs the latitude: no blank lines, no
// comments other than HELP and TYPE, no timestamps, only the value
// spellings FormatSampleValue writes, HELP and TYPE before every family's
// samples. promtool (where installed) is the independent check.
#ifndef FEDMI_TESTS_COMMON_METRICS_EXPOSITION_CHECKER_H_
#define FEDMI_TESTS_COMMON_METRICS_EXPOSITION_CHECKER_H_

#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/metrics/exposition_text.h"

namespace fedmi::metrics::testing {

namespace checker_internal {

inline const std::regex& MetricNamePattern() {
  static const std::regex pattern("[a-zA-Z_:][a-zA-Z0-9_:]*");
  return pattern;
}
inline const std::regex& LabelNamePattern() {
  static const std::regex pattern("[a-zA-Z_][a-zA-Z0-9_]*");
  return pattern;
}
inline const std::regex& ValuePattern() {
  static const std::regex pattern("NaN|[+-]Inf|-?(0|[1-9][0-9]*)(\\.[0-9]+)?(e[+-][0-9]+)?");
  return pattern;
}

// Escapes in HELP text (`quotes` false) or a label value (`quotes` true).
inline bool EscapesValid(absl::string_view text, bool quotes) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '"' && quotes) return false;  // unescaped quote inside a value
    if (text[i] != '\\') continue;
    if (i + 1 == text.size()) return false;
    const char next = text[++i];
    if (next != '\\' && next != 'n' && !(quotes && next == '"')) return false;
  }
  return true;
}

struct HistogramSeries {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  bool has_sum = false;
  double count = -1;
};

}  // namespace checker_internal

// OK when every line of `text` is valid exposition text and the families'
// rules hold: one HELP and one TYPE per family, before its samples, each
// family in one block; sample names that belong to the family; no sample
// twice; counters not negative; histogram buckets with increasing `le`,
// non-decreasing counts, a last +Inf bucket equal to _count, and _sum and
// _count after the buckets.
inline absl::Status CheckExposition(absl::string_view text) {
  using namespace checker_internal;  // NOLINT: test helper scope
  if (text.empty()) return absl::OkStatus();
  if (text.back() != '\n') return absl::InvalidArgumentError("text does not end in a line feed");
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("text is not UTF-8");
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();  // after the final line feed

  std::string family;       // the family whose lines these are
  std::string family_type;  // empty until its TYPE line
  bool family_has_help = false;
  std::set<std::string> families_done;
  std::set<std::string> samples_seen;
  std::map<std::string, HistogramSeries> histograms;  // of the current family, by labels

  auto finish_histograms = [&]() -> absl::Status {
    for (const auto& [labels, series] : histograms) {
      if (series.buckets.empty() || series.buckets.back().first != INFINITY) {
        return absl::InvalidArgumentError(absl::StrCat(family, labels, " has no +Inf bucket"));
      }
      if (!series.has_sum || series.count < 0) {
        return absl::InvalidArgumentError(absl::StrCat(family, labels, " lacks _sum or _count"));
      }
      if (series.buckets.back().second != series.count) {
        return absl::InvalidArgumentError(
            absl::StrCat(family, labels, ": +Inf bucket differs from _count"));
      }
    }
    histograms.clear();
    return absl::OkStatus();
  };
  auto start_family = [&](const std::string& name, int line_number) -> absl::Status {
    if (name == family) return absl::OkStatus();
    if (absl::Status status = finish_histograms(); !status.ok()) return status;
    if (!family.empty()) families_done.insert(family);
    if (families_done.count(name) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": family ", name, " appears in two blocks"));
    }
    family = name;
    family_type.clear();
    family_has_help = false;
    return absl::OkStatus();
  };

  for (size_t index = 0; index < lines.size(); ++index) {
    const int line_number = static_cast<int>(index) + 1;
    const absl::string_view line = lines[index];
    auto error = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, " (", line, "): ", why));
    };
    if (line.empty()) return error("blank line");
    if (line[0] == '#') {
      const std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (parts.size() < 3 || parts[0] != "#" || (parts[1] != "HELP" && parts[1] != "TYPE")) {
        return error("a comment other than HELP or TYPE");
      }
      const std::string name(parts[2]);
      if (!std::regex_match(name, MetricNamePattern())) return error("bad metric name");
      if (absl::Status status = start_family(name, line_number); !status.ok()) return status;
      if (parts[1] == "HELP") {
        if (family_has_help || !family_type.empty()) return error("HELP twice or after TYPE");
        if (parts.size() != 4 || !EscapesValid(parts[3], /*quotes=*/false)) {
          return error("HELP text missing or badly escaped");
        }
        family_has_help = true;
      } else {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (!family_type.empty()) return error("TYPE twice");
        if (!family_has_help) return error("TYPE before HELP");
        if (parts.size() != 4 || kTypes.count(std::string(parts[3])) == 0) {
          return error("unknown type");
        }
        family_type = std::string(parts[3]);
      }
      continue;
    }

    // name [{labels}] value
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    const std::string name(line.substr(0, pos));
    if (!std::regex_match(name, MetricNamePattern())) return error("bad metric name");
    std::vector<std::pair<std::string, std::string>> labels;
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        const size_t equals = line.find('=', pos);
        if (equals == absl::string_view::npos) return error("label without '='");
        const std::string label(line.substr(pos, equals - pos));
        if (!std::regex_match(label, LabelNamePattern())) return error("bad label name");
        if (equals + 1 >= line.size() || line[equals + 1] != '"') return error("unquoted value");
        size_t end = equals + 2;
        while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
        if (end >= line.size()) return error("unterminated label value");
        const absl::string_view value = line.substr(equals + 2, end - equals - 2);
        if (!EscapesValid(value, /*quotes=*/true)) return error("bad escape in label value");
        for (const auto& [seen, unused] : labels) {
          if (seen == label) return error("label twice");
        }
        labels.emplace_back(label, std::string(value));
        pos = end + 1;
        if (pos < line.size() && line[pos] == ',') {
          ++pos;
          if (pos < line.size() && line[pos] == '}') return error("trailing comma");
        } else if (pos >= line.size() || line[pos] != '}') {
          return error("labels not separated by ','");
        }
      }
      if (pos >= line.size()) return error("unterminated labels");
      if (labels.empty()) return error("empty braces");
      ++pos;
    }
    if (pos >= line.size() || line[pos] != ' ') return error("no space before the value");
    const std::string value_text(line.substr(pos + 1));
    if (!std::regex_match(value_text, ValuePattern())) return error("value (or a timestamp)");
    const double value = value_text == "NaN"    ? NAN
                         : value_text == "+Inf" ? INFINITY
                         : value_text == "-Inf" ? -INFINITY
                                                : std::strtod(value_text.c_str(), nullptr);

    if (family_type.empty()) return error("sample before its family's HELP and TYPE");
    std::string series_key = name;  // name and labels, for duplicates
    std::string labels_but_le;      // labels, for a histogram's series
    std::string le;
    bool has_le = false;
    for (const auto& [label, label_value] : labels) {
      absl::StrAppend(&series_key, "\x1f", label, "=", label_value);
      if (label == "le") {
        le = label_value;
        has_le = true;
      } else {
        absl::StrAppend(&labels_but_le, "{", label, "=", label_value, "}");
      }
    }
    if (!samples_seen.insert(series_key).second) return error("sample appears twice");

    if (family_type == "histogram") {
      HistogramSeries& series = histograms[labels_but_le];
      if (name == family + "_bucket") {
        if (!has_le) return error("bucket without le");
        if (!std::regex_match(le, ValuePattern()) || le == "NaN") return error("bad le");
        const double bound = le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr);
        if (series.has_sum || series.count >= 0) return error("bucket after _sum or _count");
        if (!series.buckets.empty() &&
            (bound <= series.buckets.back().first || value < series.buckets.back().second)) {
          return error("bucket bound or count decreases");
        }
        series.buckets.emplace_back(bound, value);
      } else if (name == family + "_sum") {
        if (has_le || series.has_sum) return error("bad or repeated _sum");
        series.has_sum = true;
      } else if (name == family + "_count") {
        if (has_le || series.count >= 0) return error("bad or repeated _count");
        series.count = value;
      } else {
        return error("sample name is not the histogram's");
      }
    } else {
      if (name != family) return error("sample name differs from its family");
      if (has_le) return error("le outside a histogram");
      if (family_type == "counter" && !(value >= 0)) return error("counter below zero");
    }
  }
  return finish_histograms();
}

}  // namespace fedmi::metrics::testing

#endif  // FEDMI_TESTS_COMMON_METRICS_EXPOSITION_CHECKER_H_
