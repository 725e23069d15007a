#include "cli/audit_entry_text.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace fedmi::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string DumpJson(const DetailJson& json) {
  return json.dump(-1, ' ', false, DetailJson::error_handler_t::replace);
}

}  // namespace

DetailJson DetailOf(const v1::AuditEntry& entry) {
  DetailJson json = DetailJson::parse(entry.detail_json(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return DetailJson::object();
  return json;
}

std::string StringField(const DetailJson& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return DumpJson(*it);
}

double NumberField(const DetailJson& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

int64_t IntField(const DetailJson& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return 0;
  return it->get<int64_t>();
}

int BoolField(const DetailJson& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_boolean()) return -1;
  return it->get<bool>() ? 1 : 0;
}

std::vector<std::string> StringsField(const DetailJson& object, const char* key) {
  std::vector<std::string> values;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return values;
  for (const auto& value : *it) {
    if (value.is_string()) values.push_back(value.get<std::string>());
  }
  return values;
}

std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
}

std::string ReadableTime(const std::string& rfc3339) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error)) {
    return rfc3339.empty() ? "an unknown time" : rfc3339;
  }
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", time, absl::UTCTimeZone());
}

std::string SummarizeDetail(const std::string& detail_json, size_t max_chars) {
  std::string summary;
  DetailJson json = DetailJson::parse(detail_json, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    summary = OneLine(detail_json);
  } else {
    std::vector<std::string> pairs;
    for (const auto& [key, value] : json.items()) {
      std::string text;
      if (value.is_string()) {
        text = value.get<std::string>();
        if (text.empty() || text.find_first_of(" \t\r\n") != std::string::npos) {
          text = DumpJson(value);
        }
      } else {
        text = DumpJson(value);
      }
      pairs.push_back(absl::StrCat(key, "=", OneLine(text)));
    }
    summary = absl::StrJoin(pairs, " ");
  }
  if (summary.size() <= max_chars) return summary;
  constexpr absl::string_view kEllipsis = "...";
  if (max_chars <= kEllipsis.size()) return std::string(kEllipsis.substr(0, max_chars));
  size_t cut = max_chars - kEllipsis.size();
  // Never split a UTF-8 sequence.
  while (cut > 0 && (static_cast<unsigned char>(summary[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(summary.substr(0, cut), kEllipsis);
}

absl::StatusOr<absl::Time> ParseSinceTime(const std::string& text) {
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &time, &error)) return time;
  if (absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &time, &error)) return time;
  return absl::InvalidArgumentError(
      absl::StrCat("--since '", text,
                   "' is neither an RFC 3339 time (2026-11-28T10:00:00Z) nor a date (2026-11-28)"));
}

}  // namespace fedmi::cli
