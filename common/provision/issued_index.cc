#include "common/provision/issued_index.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/provision/project_layout.h"

namespace fedmi {
namespace {

absl::StatusOr<nlohmann::json> ReadJsonFile(Env& env, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, env.ReadFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not a JSON object"));
  }
  return json;
}

absl::Status WriteJsonFile(Env& env, const std::string& path, const nlohmann::json& json) {
  return WriteFileAtomically(env, path, json.dump(2) + "\n", 0644);
}

absl::StatusOr<absl::Time> ParseCertificateTime(const std::string& text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", text, &time, &error)) {
    return absl::DataLossError(absl::StrCat("bad time '", text, "': ", error));
  }
  return time;
}

nlohmann::json RecordToJson(const IssuedRecord& record) {
  nlohmann::json json = {{"name", record.name},
                         {"role", PartyRoleName(record.role)},
                         {"serial", record.serial_hex},
                         {"not_before", FormatCertificateTime(record.not_before)},
                         {"not_after", FormatCertificateTime(record.not_after)},
                         {"fingerprint", record.sha256_fingerprint},
                         {"kit", record.kit}};
  if (record.revoked()) {
    json["revoked_at"] = FormatCertificateTime(record.revoked_at);
    json["revocation_reason"] = record.revocation_reason;
  }
  return json;
}

absl::StatusOr<IssuedRecord> RecordFromJson(const nlohmann::json& json, const std::string& path) {
  auto field = [&](const char* key) -> absl::StatusOr<std::string> {
    auto it = json.find(key);
    if (it == json.end() || !it->is_string()) {
      return absl::DataLossError(absl::StrCat("'", path, "': an entry lacks \"", key, "\""));
    }
    return it->get<std::string>();
  };
  IssuedRecord record;
  ASSIGN_OR_RETURN(record.name, field("name"));
  ASSIGN_OR_RETURN(std::string role, field("role"));
  ASSIGN_OR_RETURN(record.role, ParsePartyRole(role));
  ASSIGN_OR_RETURN(record.serial_hex, field("serial"));
  ASSIGN_OR_RETURN(std::string not_before, field("not_before"));
  ASSIGN_OR_RETURN(record.not_before, ParseCertificateTime(not_before));
  ASSIGN_OR_RETURN(std::string not_after, field("not_after"));
  ASSIGN_OR_RETURN(record.not_after, ParseCertificateTime(not_after));
  ASSIGN_OR_RETURN(record.sha256_fingerprint, field("fingerprint"));
  ASSIGN_OR_RETURN(record.kit, field("kit"));
  if (json.contains("revoked_at")) {
    ASSIGN_OR_RETURN(std::string revoked_at, field("revoked_at"));
    ASSIGN_OR_RETURN(record.revoked_at, ParseCertificateTime(revoked_at));
    ASSIGN_OR_RETURN(record.revocation_reason, field("revocation_reason"));
  }
  return record;
}

}  // namespace

absl::StatusOr<std::vector<IssuedRecord>> ReadIssuedIndex(Env& env, const std::string& dir) {
  const std::string path = project_layout::IndexPath(dir);
  if (!env.FileExists(path)) return std::vector<IssuedRecord>{};
  ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(env, path));
  auto parties = json.find("parties");
  if (parties == json.end() || !parties->is_array()) {
    return absl::DataLossError(absl::StrCat("'", path, "' lacks a \"parties\" list"));
  }
  std::vector<IssuedRecord> records;
  for (const nlohmann::json& entry : *parties) {
    ASSIGN_OR_RETURN(IssuedRecord record, RecordFromJson(entry, path));
    records.push_back(std::move(record));
  }
  return records;
}

absl::Status WriteIssuedIndex(Env& env, const std::string& dir,
                              const std::vector<IssuedRecord>& records) {
  nlohmann::json parties = nlohmann::json::array();
  for (const IssuedRecord& record : records) parties.push_back(RecordToJson(record));
  return WriteJsonFile(env, project_layout::IndexPath(dir),
                       {{"version", 1}, {"parties", std::move(parties)}});
}

absl::StatusOr<std::optional<CoordinatorRecord>> ReadCoordinatorRecord(Env& env,
                                                                       const std::string& dir) {
  const std::string path = project_layout::ProjectPath(dir);
  if (!env.FileExists(path)) return std::optional<CoordinatorRecord>();
  ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(env, path));
  auto coordinator = json.find("coordinator");
  if (coordinator == json.end()) return std::optional<CoordinatorRecord>();
  if (!coordinator->is_object() || !coordinator->value("address", nlohmann::json()).is_string()) {
    return absl::DataLossError(absl::StrCat("'", path, "': bad \"coordinator\" entry"));
  }
  CoordinatorRecord record;
  record.name = coordinator->value("name", "");
  record.address = coordinator->value("address", "");
  record.fingerprint = coordinator->value("fingerprint", "");
  // Written for tools; a hand-edited value of the wrong type is ignored.
  if (auto host = coordinator->find("host"); host != coordinator->end() && host->is_string()) {
    record.host = host->get<std::string>();
  }
  if (auto port = coordinator->find("port");
      port != coordinator->end() && port->is_number_integer()) {
    record.port = port->get<int>();
  }
  return std::optional<CoordinatorRecord>(std::move(record));
}

absl::Status WriteCoordinatorRecord(Env& env, const std::string& dir, const std::string& project,
                                    const CoordinatorRecord& record) {
  return WriteJsonFile(env, project_layout::ProjectPath(dir),
                       {{"project", project},
                        {"coordinator",
                         {{"name", record.name},
                          {"host", record.host},
                          {"port", record.port},
                          {"address", record.address},
                          {"fingerprint", record.fingerprint}}}});
}

}  // namespace fedmi
