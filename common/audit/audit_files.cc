#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/audit/audit_json.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"

// The files an auditor handles: the JSON Lines export of a log and one JSON
// file per upload receipt; and the coordinator's audit-signing key files
// (declared in audit.h).

namespace fedmi::audit {
namespace {

constexpr char kExportFormat[] = "fedmi-audit-v1";

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

absl::StatusOr<v1::AuditEntry> EntryFromJson(const Json& json) {
  JsonFields fields(json);
  v1::AuditEntry entry;
  ASSIGN_OR_RETURN(int64_t seq, fields.Int64("seq"));
  ASSIGN_OR_RETURN(std::string time, fields.String("time"));
  ASSIGN_OR_RETURN(std::string actor, fields.String("actor"));
  ASSIGN_OR_RETURN(std::string action, fields.String("action"));
  ASSIGN_OR_RETURN(int64_t run_id, fields.Int64("run_id"));
  ASSIGN_OR_RETURN(int32_t round, fields.Int32("round"));
  ASSIGN_OR_RETURN(std::string detail, fields.String("detail"));
  ASSIGN_OR_RETURN(std::string prev_hash, fields.String("prev_hash"));
  ASSIGN_OR_RETURN(std::string hash, fields.String("hash"));
  ASSIGN_OR_RETURN(std::string signature, fields.Base64("signature"));
  entry.set_seq(seq);
  entry.set_time(std::move(time));
  entry.set_actor(std::move(actor));
  entry.set_action(std::move(action));
  entry.set_run_id(run_id);
  entry.set_round(round);
  entry.set_detail_json(std::move(detail));
  entry.set_prev_hash(std::move(prev_hash));
  entry.set_hash(std::move(hash));
  entry.set_signature(std::move(signature));
  return entry;
}

absl::StatusOr<ExportedLog> HeaderFromJson(const Json& json) {
  JsonFields fields(json);
  ASSIGN_OR_RETURN(std::string format, fields.String("format"));
  if (format != kExportFormat) {
    return absl::InvalidArgumentError(absl::StrCat("not a fedmi audit export (format '", format,
                                                   "', expected '", kExportFormat, "')"));
  }
  ExportedLog log;
  ASSIGN_OR_RETURN(log.signer_certificate_pem, fields.String("signer_certificate"));
  ASSIGN_OR_RETURN(log.exported_at, fields.String("exported_at"));
  ASSIGN_OR_RETURN(const Json* head, fields.Get("head"));
  if (!head->is_object()) return absl::InvalidArgumentError("field 'head' is not an object");
  JsonFields head_fields(*head);
  ASSIGN_OR_RETURN(int64_t seq, head_fields.Int64("seq"));
  ASSIGN_OR_RETURN(std::string hash, head_fields.String("hash"));
  ASSIGN_OR_RETURN(std::string signature, head_fields.Base64("signature"));
  log.head.set_seq(seq);
  log.head.set_hash(std::move(hash));
  log.head.set_signature(std::move(signature));
  return log;
}

// Every *.json file in `dir`, in order of file name, parsed by `parse`.
// `what` names the files in errors ("receipt folder '...' does not exist").
template <typename Record>
absl::StatusOr<std::vector<Record>> ReadJsonFiles(
    const std::string& dir, absl::string_view what,
    absl::StatusOr<Record> (*parse)(const std::string&)) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(dir, error);
  if (!fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat(what, " folder '", dir, "' does not exist"));
  }
  if (!fs::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat("'", dir, "' is not a folder"));
  }
  std::vector<std::string> paths;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    std::error_code ignored;
    if (it->path().extension() == ".json" && it->is_regular_file(ignored)) {
      paths.push_back(it->path().string());
    }
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot list ", what, " folder '", dir, "': ", error.message()));
  }
  std::sort(paths.begin(), paths.end());

  std::vector<Record> records;
  records.reserve(paths.size());
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
    absl::StatusOr<Record> record = parse(contents);
    if (!record.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " file '", path, "': ", record.status().message()));
    }
    records.push_back(*std::move(record));
  }
  return records;
}

}  // namespace

// ---------------------------------------------------------------------------
// The coordinator's signing key.

absl::StatusOr<std::unique_ptr<AuditSigner>> LoadAuditSigner(const std::string& key_file,
                                                             const std::string& cert_file,
                                                             const std::string& ca_file, Env& env) {
  if (key_file.empty() || cert_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no audit-signing key: pass --audit-key and --audit-cert (audit-key and audit-cert in "
        "coordinator.toml). The audit log is no longer signed with the TLS key; `fedmi "
        "provision add-audit-signer <coordinator>` issues the key for an older kit, or run "
        "with --insecure for a local experiment (docs/audit.md)"));
  }
  ASSIGN_OR_RETURN(std::string key_pem, env.ReadFile(key_file));
  ASSIGN_OR_RETURN(std::string cert_pem, env.ReadFile(cert_file));
  ASSIGN_OR_RETURN(std::string ca_pem, env.ReadFile(ca_file));
  absl::Status signer_ok = VerifySigner(cert_pem, ca_pem);
  if (!signer_ok.ok()) {
    return absl::Status(signer_ok.code(), absl::StrCat(cert_file, ": ", signer_ok.message()));
  }
  return AuditSigner::Create(std::move(key_pem), std::move(cert_pem));
}

// ---------------------------------------------------------------------------
// Export files.

std::string EntryToJsonLine(const v1::AuditEntry& entry) {
  OrderedJson line;
  line["seq"] = entry.seq();
  line["time"] = entry.time();
  line["actor"] = entry.actor();
  line["action"] = entry.action();
  line["run_id"] = entry.run_id();
  line["round"] = entry.round();
  line["detail"] = entry.detail_json();
  line["prev_hash"] = entry.prev_hash();
  line["hash"] = entry.hash();
  line["signature"] = absl::Base64Escape(entry.signature());
  return DumpJson(line);
}

absl::Status WriteExport(const std::string& path, const ExportedLog& log, Env& env) {
  OrderedJson head;
  head["seq"] = log.head.seq();
  head["hash"] = log.head.hash();
  head["signature"] = absl::Base64Escape(log.head.signature());
  OrderedJson header;
  header["format"] = kExportFormat;
  header["signer_certificate"] = log.signer_certificate_pem;
  header["head"] = std::move(head);
  header["exported_at"] =
      log.exported_at.empty() ? audit::FormatTime(absl::Now()) : log.exported_at;

  std::string contents = DumpJson(header);
  contents.push_back('\n');
  for (const v1::AuditEntry& entry : log.entries) {
    absl::StrAppend(&contents, EntryToJsonLine(entry), "\n");
  }
  return WriteFileAtomically(env, path, contents);
}

absl::StatusOr<ExportedLog> ReadExport(const std::string& path, Env& env) {
  ASSIGN_OR_RETURN(std::string contents, env.ReadFile(path));
  std::vector<absl::string_view> lines = absl::StrSplit(contents, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  if (lines.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": line 1: the header is missing"));
  }

  ExportedLog log;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = absl::StrCat(path, ": line ", i + 1, ": ");
    if (line.empty()) return absl::InvalidArgumentError(absl::StrCat(where, "empty line"));
    absl::StatusOr<Json> json = ParseJsonObject(line);
    if (!json.ok()) return Prefixed(where, json.status());
    if (i == 0) {
      absl::StatusOr<ExportedLog> header = HeaderFromJson(*json);
      if (!header.ok()) return Prefixed(where, header.status());
      log = *std::move(header);
    } else {
      absl::StatusOr<v1::AuditEntry> entry = EntryFromJson(*json);
      if (!entry.ok()) return Prefixed(where, entry.status());
      log.entries.push_back(*std::move(entry));
    }
  }
  return log;
}

// ---------------------------------------------------------------------------
// Receipt files.

std::string ReceiptToJson(const v1::UploadReceipt& receipt) {
  OrderedJson json;
  json["run_id"] = receipt.run_id();
  json["round"] = receipt.round();
  json["site"] = receipt.site();
  json["sha256"] = HexEncode(receipt.sha256());
  json["bytes_received"] = receipt.bytes_received();
  json["examples"] = receipt.examples();
  json["audit_seq"] = receipt.audit_seq();
  json["audit_hash"] = receipt.audit_hash();
  json["time"] = receipt.time();
  json["signature"] = absl::Base64Escape(receipt.signature());
  return DumpJson(json, 2);
}

absl::StatusOr<v1::UploadReceipt> ReceiptFromJson(const std::string& json_text) {
  ASSIGN_OR_RETURN(Json json, ParseJsonObject(json_text));
  JsonFields fields(json);
  v1::UploadReceipt receipt;
  ASSIGN_OR_RETURN(int64_t run_id, fields.Int64("run_id"));
  ASSIGN_OR_RETURN(int32_t round, fields.Int32("round"));
  ASSIGN_OR_RETURN(std::string site, fields.String("site"));
  ASSIGN_OR_RETURN(std::string sha256_hex, fields.String("sha256"));
  std::string sha256;
  if (sha256_hex.size() != 64 || !HexDecode(sha256_hex, &sha256)) {
    return absl::InvalidArgumentError("field 'sha256' is not 64 hex digits");
  }
  ASSIGN_OR_RETURN(uint64_t bytes_received, fields.Uint64("bytes_received"));
  ASSIGN_OR_RETURN(int64_t examples, fields.Int64("examples"));
  ASSIGN_OR_RETURN(int64_t audit_seq, fields.Int64("audit_seq"));
  ASSIGN_OR_RETURN(std::string audit_hash, fields.String("audit_hash"));
  ASSIGN_OR_RETURN(std::string time, fields.String("time"));
  ASSIGN_OR_RETURN(std::string signature, fields.Base64("signature"));
  receipt.set_run_id(run_id);
  receipt.set_round(round);
  receipt.set_site(std::move(site));
  receipt.set_sha256(std::move(sha256));
  receipt.set_bytes_received(bytes_received);
  receipt.set_examples(examples);
  receipt.set_audit_seq(audit_seq);
  receipt.set_audit_hash(std::move(audit_hash));
  receipt.set_time(std::move(time));
  receipt.set_signature(std::move(signature));
  return receipt;
}

absl::StatusOr<std::vector<v1::UploadReceipt>> ReadReceiptsDir(const std::string& dir) {
  return ReadJsonFiles<v1::UploadReceipt>(dir, "receipt", ReceiptFromJson);
}

absl::StatusOr<std::vector<HeldHead>> ReadHeldHeadsDir(const std::string& dir) {
  return ReadJsonFiles<HeldHead>(dir, "head", HeldHeadFromJson);
}

std::string ReceiptFileName(const v1::UploadReceipt& receipt) {
  return absl::StrCat("run-", receipt.run_id(), "-round-", receipt.round(), ".json");
}

}  // namespace fedmi::audit
