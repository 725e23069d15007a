// Internal to common/audit: the JSON helpers shared by verification (which
// reads an entry's detail), the canonical detail encoding and the auditor's
// file formats (exports and receipts). Stateless; thread-safe.
#ifndef FEDMI_COMMON_AUDIT_AUDIT_JSON_H_
#define FEDMI_COMMON_AUDIT_AUDIT_JSON_H_

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/status.h"

namespace fedmi::audit {

using Json = nlohmann::json;
// Keeps keys in the order written, so exported lines read like the docs.
using OrderedJson = nlohmann::ordered_json;

// "3f2a9b1c..." for messages; hashes are too long to read in full.
inline std::string Short(const std::string& hash) {
  if (hash.empty()) return "(none)";
  if (hash.size() <= 12) return hash;
  return absl::StrCat(hash.substr(0, 8), "...");
}

inline std::string DumpJson(const Json& json, int indent = -1) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}
inline std::string DumpJson(const OrderedJson& json, int indent = -1) {
  return json.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

// Typed access to a parsed JSON object; errors name the field.

class JsonFields {
 public:
  explicit JsonFields(const Json& object) : object_(object) {}

  absl::StatusOr<const Json*> Get(const char* name) const {
    auto it = object_.find(name);
    if (it == object_.end()) return Invalid(name, "is missing");
    return &*it;
  }
  absl::StatusOr<std::string> String(const char* name) const {
    ASSIGN_OR_RETURN(const Json* value, Get(name));
    if (!value->is_string()) return Invalid(name, "is not a string");
    return value->get<std::string>();
  }
  absl::StatusOr<int64_t> Int64(const char* name) const {
    ASSIGN_OR_RETURN(const Json* value, Get(name));
    if (!value->is_number_integer()) return Invalid(name, "is not an integer");
    if (value->is_number_unsigned() &&
        value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(name, "is out of range");
    }
    return value->get<int64_t>();
  }
  absl::StatusOr<int32_t> Int32(const char* name) const {
    ASSIGN_OR_RETURN(int64_t value, Int64(name));
    if (value < std::numeric_limits<int32_t>::min() ||
        value > std::numeric_limits<int32_t>::max()) {
      return Invalid(name, "is out of range");
    }
    return static_cast<int32_t>(value);
  }
  absl::StatusOr<uint64_t> Uint64(const char* name) const {
    ASSIGN_OR_RETURN(const Json* value, Get(name));
    if (!value->is_number_integer()) return Invalid(name, "is not an integer");
    if (!value->is_number_unsigned()) return Invalid(name, "is negative");
    return value->get<uint64_t>();
  }
  absl::StatusOr<std::string> Base64(const char* name) const {
    ASSIGN_OR_RETURN(std::string text, String(name));
    std::string bytes;
    if (!absl::Base64Unescape(text, &bytes)) return Invalid(name, "is not base64");
    return bytes;
  }

 private:
  static absl::Status Invalid(const char* name, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' ", problem));
  }

  const Json& object_;
};

inline absl::StatusOr<Json> ParseJsonObject(absl::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("not a JSON object");
  return json;
}

}  // namespace fedmi::audit

#endif  // FEDMI_COMMON_AUDIT_AUDIT_JSON_H_
