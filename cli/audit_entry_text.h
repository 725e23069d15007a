// Audit log entries as text for people: reading an entry's detail JSON
// field by field, and the pieces `fedmi audit log` and `fedmi run report`
// print (one-line summaries, CSV fields, readable times, the --since time).
//
// Pure functions without shared state or I/O. Malformed detail JSON is
// shown as it is, or read as an empty object, rather than failing.
#ifndef FEDMI_CLI_AUDIT_ENTRY_TEXT_H_
#define FEDMI_CLI_AUDIT_ENTRY_TEXT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/csv.h"
#include "fedmi/v1/audit.pb.h"

namespace fedmi::cli {

// Ordered, so that a summary shows the keys as the coordinator stored them.
using DetailJson = nlohmann::ordered_json;

// The entry's detail as an object; anything else (malformed, not an object)
// becomes an empty one, so a damaged entry blanks fields instead of failing.
DetailJson DetailOf(const v1::AuditEntry& entry);

// Fields of a detail object. Absent or mistyped fields read as "" (a
// non-string value as its compact JSON), NaN, 0, -1 (booleans: 1 true,
// 0 false) and an empty list.
std::string StringField(const DetailJson& object, const char* key);
double NumberField(const DetailJson& object, const char* key);
int64_t IntField(const DetailJson& object, const char* key);
int BoolField(const DetailJson& object, const char* key);
std::vector<std::string> StringsField(const DetailJson& object, const char* key);

// `text` with every line break replaced by a space.
std::string OneLine(absl::string_view text);

// "2026-11-28 10:00:00 UTC" from the log's RFC 3339 time; the text as it is
// when it does not parse, "an unknown time" when empty.
std::string ReadableTime(const std::string& rfc3339);

// An entry's detail_json in one line, for tables: the object's `key=value`
// pairs in stored order (strings without quotes unless they hold spaces,
// nested values as compact JSON), cut to at most `max_chars` characters
// with "...". Detail that is not a JSON object is shown as it is, cut the
// same way.
std::string SummarizeDetail(const std::string& detail_json, size_t max_chars = 60);

// A --since value: RFC 3339 ("2026-11-28T10:00:00Z", offsets and fractional
// seconds allowed) or a date ("2026-11-28", midnight UTC). InvalidArgument
// naming the accepted forms otherwise.
absl::StatusOr<absl::Time> ParseSinceTime(const std::string& text);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_AUDIT_ENTRY_TEXT_H_
