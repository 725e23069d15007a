#include "common/audit/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/base/byte_order.h"
#include "common/base/status.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"

namespace fedmi::audit {
namespace {

using Json = nlohmann::json;
// Keeps keys in the order written, so exported lines read like the docs.
using OrderedJson = nlohmann::ordered_json;

constexpr char kEntryTag[] = "fedmi/audit/entry/v1";
constexpr char kHeadTag[] = "fedmi/audit/head/v1";
constexpr char kReceiptTag[] = "fedmi/audit/receipt/v1";
constexpr char kProbeData[] = "fedmi/audit/probe/v1";
constexpr char kExportFormat[] = "fedmi-audit-v1";
constexpr char kCoordinatorRole[] = "coordinator";

// ---------------------------------------------------------------------------
// Canonical encoding: fixed-width integers and length-prefixed strings.

void AppendUint64(std::string* out, uint64_t value) { AppendBigEndian64(out, value); }
void AppendInt64(std::string* out, int64_t value) {
  AppendBigEndian64(out, static_cast<uint64_t>(value));
}
void AppendString(std::string* out, absl::string_view value) {
  AppendBigEndian64(out, value.size());
  out->append(value.data(), value.size());
}

bool IsHexHash(const std::string& text) {
  std::string ignored;
  return text.size() == 64 && HexDecode(text, &ignored);
}

// "3f2a9b1c..." for messages; hashes are too long to read in full.
std::string Short(const std::string& hash) {
  if (hash.empty()) return "(none)";
  if (hash.size() <= 12) return hash;
  return absl::StrCat(hash.substr(0, 8), "...");
}

// Sets the fields that place `entry` after `previous` and clears the seal.
void Chain(v1::AuditEntry* entry, const v1::AuditEntry* previous) {
  entry->set_seq(previous == nullptr ? 1 : previous->seq() + 1);
  entry->set_prev_hash(previous == nullptr ? kGenesisHash : previous->hash());
  entry->clear_hash();
  entry->clear_signature();
}

std::string DumpJson(const Json& json, int indent = -1) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}
std::string DumpJson(const OrderedJson& json, int indent = -1) {
  return json.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

// ---------------------------------------------------------------------------
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

absl::StatusOr<Json> ParseJsonObject(absl::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("not a JSON object");
  return json;
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

// ---------------------------------------------------------------------------
// Files.

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  const int error = errno;
  std::string message = absl::StrCat("cannot ", what, " '", path, "': ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Writes a temporary file next to `path`, syncs it and renames it over `path`.
absl::Status ReplaceFile(const std::string& path, absl::string_view contents) {
  static std::atomic<uint64_t> counter{0};
  const std::string temp =
      absl::StrCat(path, ".tmp-", getpid(), "-", absl::ToUnixNanos(absl::Now()), "-", counter++);
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", temp);
  absl::Status status;
  size_t written = 0;
  while (status.ok() && written < contents.size()) {
    const ssize_t n = write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoError("write", temp);
    } else {
      written += static_cast<size_t>(n);
    }
  }
  if (status.ok() && fsync(fd) != 0) status = ErrnoError("sync", temp);
  if (close(fd) != 0 && status.ok()) status = ErrnoError("close", temp);
  if (status.ok() && rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoError("rename into", path);
  }
  if (!status.ok()) unlink(temp.c_str());
  return status;
}

// ---------------------------------------------------------------------------
// Verification messages.

absl::Status EntryError(int64_t seq, absl::string_view problem) {
  return absl::DataLossError(absl::StrCat("entry ", seq, ": ", problem));
}

// Entry `i` does not follow entry `i - 1`: a gap, a repeat or a reordering.
absl::Status SequenceError(const std::vector<v1::AuditEntry>& entries, size_t i) {
  const int64_t previous = entries[i - 1].seq();
  const int64_t seq = entries[i].seq();
  if (seq == previous) {
    return absl::DataLossError(absl::StrCat("entry ", seq, " is repeated"));
  }
  if (seq < previous) {
    return absl::DataLossError(
        absl::StrCat("entry ", seq, " out of order: it follows entry ", previous));
  }
  // The missing entries may come later: then the log was reordered, and the
  // entry that moved is the one to name.
  for (size_t j = i + 1; j < entries.size(); ++j) {
    if (entries[j].seq() > previous && entries[j].seq() < seq) {
      return absl::DataLossError(absl::StrCat(
          "entry ", entries[j].seq(), " out of order: it follows entry ", entries[j - 1].seq()));
    }
  }
  const std::string missing =
      seq - previous == 2 ? absl::StrCat("entry ", previous + 1, " is missing")
                          : absl::StrCat("entries ", previous + 1, " to ", seq - 1, " are missing");
  return absl::DataLossError(absl::StrCat("gap in sequence: entry ", seq, " follows entry ",
                                          previous, " (", missing, ")"));
}

}  // namespace

// ---------------------------------------------------------------------------
// Encodings.

std::string CanonicalEntryBytes(const v1::AuditEntry& entry) {
  std::string out;
  AppendString(&out, kEntryTag);
  AppendInt64(&out, entry.seq());
  AppendString(&out, entry.time());
  AppendString(&out, entry.actor());
  AppendString(&out, entry.action());
  AppendInt64(&out, entry.run_id());
  AppendInt64(&out, entry.round());
  AppendString(&out, entry.detail_json());
  AppendString(&out, entry.prev_hash());
  return out;
}

std::string EntryHash(const v1::AuditEntry& entry) {
  return HexEncode(Sha256::Digest(CanonicalEntryBytes(entry)));
}

std::string HeadBytes(int64_t seq, const std::string& hash_hex) {
  std::string out;
  AppendString(&out, kHeadTag);
  AppendInt64(&out, seq);
  AppendString(&out, hash_hex);
  return out;
}

std::string ReceiptBytes(const v1::UploadReceipt& receipt) {
  std::string out;
  AppendString(&out, kReceiptTag);
  AppendInt64(&out, receipt.run_id());
  AppendInt64(&out, receipt.round());
  AppendString(&out, receipt.site());
  AppendString(&out, receipt.sha256());
  AppendUint64(&out, receipt.bytes_received());
  AppendInt64(&out, receipt.examples());
  AppendInt64(&out, receipt.audit_seq());
  AppendString(&out, receipt.audit_hash());
  AppendString(&out, receipt.time());
  return out;
}

std::string FormatTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseTime(const std::string& text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad time '", text, "' (expected RFC 3339, e.g. 2026-11-28T23:33:19.123456Z): ", error));
  }
  return time;
}

// ---------------------------------------------------------------------------
// Sealing.

absl::StatusOr<std::unique_ptr<AuditSigner>> AuditSigner::Create(std::string key_pem,
                                                                 std::string cert_pem) {
  absl::StatusOr<std::string> probe = SignWithKeyPem(key_pem, kProbeData);
  if (!probe.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the audit signing key cannot sign: ", probe.status().message()));
  }
  absl::Status match = VerifyWithCertificatePem(cert_pem, kProbeData, *probe);
  if (!match.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the audit signing key does not belong to its certificate: ", match.message()));
  }
  absl::StatusOr<std::unique_ptr<SigningKey>> key = SigningKey::FromPem(key_pem);
  if (!key.ok()) return key.status();
  return std::unique_ptr<AuditSigner>(new AuditSigner(*std::move(key), std::move(cert_pem)));
}

absl::StatusOr<std::string> AuditSigner::Sign(const std::string& data) const {
  absl::StatusOr<std::string> signature = key_->Sign(data);
  if (!signature.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot sign the audit log: ", signature.status().message()));
  }
  return signature;
}

absl::StatusOr<v1::AuditEntry> AuditSigner::Seal(v1::AuditEntry draft,
                                                 const v1::AuditEntry* previous) const {
  if (previous != nullptr && !IsHexHash(previous->hash())) {
    return absl::InvalidArgumentError(absl::StrCat("cannot chain onto audit entry ",
                                                   previous->seq(), ": its hash '",
                                                   previous->hash(), "' is not 64 hex digits"));
  }
  Chain(&draft, previous);
  const std::string bytes = CanonicalEntryBytes(draft);
  ASSIGN_OR_RETURN(std::string signature, Sign(bytes));
  draft.set_hash(HexEncode(Sha256::Digest(bytes)));
  draft.set_signature(std::move(signature));
  return draft;
}

absl::StatusOr<v1::AuditHead> AuditSigner::SignHead(const v1::AuditEntry& last) const {
  v1::AuditHead head;
  head.set_seq(last.seq());
  head.set_hash(last.hash());
  ASSIGN_OR_RETURN(std::string signature, Sign(HeadBytes(head.seq(), head.hash())));
  head.set_signature(std::move(signature));
  return head;
}

absl::Status AuditSigner::SignReceipt(v1::UploadReceipt* receipt) const {
  receipt->clear_signature();
  ASSIGN_OR_RETURN(std::string signature, Sign(ReceiptBytes(*receipt)));
  receipt->set_signature(std::move(signature));
  return absl::OkStatus();
}

v1::AuditEntry SealUnsigned(v1::AuditEntry draft, const v1::AuditEntry* previous) {
  Chain(&draft, previous);
  draft.set_hash(EntryHash(draft));
  return draft;
}

// ---------------------------------------------------------------------------
// Verification.

absl::Status VerifySigner(const std::string& signer_cert_pem, const std::string& ca_pem) {
  absl::StatusOr<CertificateInfo> ca = ParseCertificatePem(ca_pem);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the project CA certificate cannot be read: ", ca.status().message()));
  }
  absl::StatusOr<CertificateInfo> signer = ParseCertificatePem(signer_cert_pem);
  if (!signer.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the log's signer certificate cannot be read: ", signer.status().message()));
  }
  // Entries were signed while the certificate was valid; checking "now"
  // alone would make every log unverifiable once its signer expires.
  absl::Time at = absl::Now();
  const absl::Time earliest = std::max(ca->not_before, signer->not_before) + absl::Seconds(1);
  const absl::Time latest = std::min(ca->not_after, signer->not_after) - absl::Seconds(1);
  if (earliest <= latest) at = std::clamp(at, earliest, latest);
  absl::Status issued = VerifyIssuedBy(signer_cert_pem, ca_pem, at);
  if (!issued.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the log's signer certificate is not issued by the project CA: ", issued.message()));
  }
  if (signer->role_name != kCoordinatorRole) {
    return absl::PermissionDeniedError(
        absl::StrCat("the log's signer certificate '", signer->common_name, "' has role '",
                     signer->role_name, "', not '", kCoordinatorRole, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifyReport> VerifyLog(const std::vector<v1::AuditEntry>& entries,
                                       const v1::AuditHead& head,
                                       const std::string& signer_cert_pem,
                                       const std::string& ca_pem) {
  RETURN_IF_ERROR(VerifySigner(signer_cert_pem, ca_pem));
  if (entries.empty()) return absl::DataLossError("the log is empty");

  for (size_t i = 0; i < entries.size(); ++i) {
    const v1::AuditEntry& entry = entries[i];
    const std::string bytes = CanonicalEntryBytes(entry);
    const std::string computed = HexEncode(Sha256::Digest(bytes));
    if (computed != entry.hash()) {
      return EntryError(entry.seq(), absl::StrCat("bad hash: stored ", Short(entry.hash()),
                                                  ", computed ", Short(computed)));
    }
    if (i == 0) {
      if (entry.seq() > 1) {
        return absl::DataLossError(absl::StrCat(
            "entries before ", entry.seq(), " are missing: the log starts at entry ", entry.seq()));
      }
      if (entry.seq() < 1) {
        return EntryError(entry.seq(), "bad sequence number: the log starts at entry 1");
      }
      if (entry.prev_hash() != kGenesisHash) {
        return EntryError(entry.seq(),
                          absl::StrCat("broken chain: prev_hash ", Short(entry.prev_hash()),
                                       " is not the genesis hash"));
      }
    } else {
      const v1::AuditEntry& previous = entries[i - 1];
      if (entry.seq() != previous.seq() + 1) return SequenceError(entries, i);
      if (entry.prev_hash() != previous.hash()) {
        return EntryError(entry.seq(),
                          absl::StrCat("broken chain: prev_hash ", Short(entry.prev_hash()),
                                       " is not the hash of entry ", previous.seq()));
      }
    }
    if (entry.signature().empty()) return EntryError(entry.seq(), "bad signature (none)");
    if (!VerifyWithCertificatePem(signer_cert_pem, bytes, entry.signature()).ok()) {
      return EntryError(entry.seq(), "bad signature");
    }
    if (entry.action() == kTailMissingAction) {
      // The coordinator itself found entries gone when it restarted and
      // recorded it; the chain after it is intact, but the log is not.
      return EntryError(entry.seq(), absl::StrCat("records that entries were missing from the "
                                                  "end of the log when the coordinator "
                                                  "restarted: ",
                                                  entry.detail_json()));
    }
  }

  if (!VerifyWithCertificatePem(signer_cert_pem, HeadBytes(head.seq(), head.hash()),
                                head.signature())
           .ok()) {
    return absl::DataLossError("the log's head is not signed by the coordinator");
  }
  const v1::AuditEntry& last = entries.back();
  if (head.seq() > last.seq()) {
    return absl::DataLossError(absl::StrCat(
        "entries after ", last.seq(), " are missing: the signed head names entry ", head.seq()));
  }
  if (head.seq() < last.seq()) {
    return EntryError(head.seq() + 1,
                      absl::StrCat("after the signed head, which names entry ", head.seq()));
  }
  if (head.hash() != last.hash()) {
    return EntryError(last.seq(),
                      absl::StrCat("differs from the signed head: hash ", Short(last.hash()),
                                   ", the head names ", Short(head.hash())));
  }

  VerifyReport report;
  report.entries = static_cast<int64_t>(entries.size());
  report.first_seq = entries.front().seq();
  report.last_seq = last.seq();
  return report;
}

absl::Status VerifyReceipts(const std::vector<v1::UploadReceipt>& receipts,
                            const std::vector<v1::AuditEntry>& entries,
                            const std::string& signer_cert_pem) {
  std::map<int64_t, const v1::AuditEntry*> by_seq;
  for (const v1::AuditEntry& entry : entries) by_seq.emplace(entry.seq(), &entry);

  for (const v1::UploadReceipt& receipt : receipts) {
    const std::string what =
        absl::StrCat("receipt of site '", receipt.site(), "' for run ", receipt.run_id(), " round ",
                     receipt.round(), " (entry ", receipt.audit_seq(), "): ");
    if (!VerifyWithCertificatePem(signer_cert_pem, ReceiptBytes(receipt), receipt.signature())
             .ok()) {
      return absl::DataLossError(absl::StrCat(what, "bad signature"));
    }
    auto found = by_seq.find(receipt.audit_seq());
    // Where the receipt's entry is not there, or is about something else,
    // the log no longer holds this site's update for that round at all (a
    // rewritten log renumbers entries): say so rather than "differs".
    const bool same_update =
        found != by_seq.end() && found->second->action() == kUpdateReceivedAction &&
        found->second->actor() == receipt.site() && found->second->run_id() == receipt.run_id() &&
        found->second->round() == receipt.round();
    if (!same_update) {
      const bool elsewhere =
          std::any_of(entries.begin(), entries.end(), [&receipt](const v1::AuditEntry& entry) {
            return entry.action() == kUpdateReceivedAction && entry.actor() == receipt.site() &&
                   entry.run_id() == receipt.run_id() && entry.round() == receipt.round();
          });
      if (!elsewhere || found == by_seq.end()) {
        return absl::DataLossError(absl::StrCat(what, "missing from the log"));
      }
    }
    const v1::AuditEntry& entry = *found->second;
    auto differs = [&what](absl::string_view field, const auto& in_log, const auto& in_receipt) {
      return absl::DataLossError(absl::StrCat(what, "the log's entry differs (", field, " ", in_log,
                                              " in the log, ", in_receipt, " in the receipt)"));
    };
    if (entry.hash() != receipt.audit_hash()) {
      return differs("hash", Short(entry.hash()), Short(receipt.audit_hash()));
    }
    if (entry.action() != kUpdateReceivedAction) {
      return differs("action", entry.action(), kUpdateReceivedAction);
    }
    if (entry.run_id() != receipt.run_id()) return differs("run", entry.run_id(), receipt.run_id());
    if (entry.round() != receipt.round()) return differs("round", entry.round(), receipt.round());
    if (entry.time() != receipt.time()) return differs("time", entry.time(), receipt.time());

    absl::StatusOr<Json> detail = ParseJsonObject(entry.detail_json());
    if (!detail.ok()) {
      return absl::DataLossError(
          absl::StrCat(what, "the log's entry has a bad detail: ", detail.status().message()));
    }
    JsonFields fields(*detail);
    absl::StatusOr<std::string> site = fields.String("site");
    absl::StatusOr<std::string> sha256 = fields.String("sha256");
    absl::StatusOr<uint64_t> bytes = fields.Uint64("bytes");
    absl::StatusOr<int64_t> examples = fields.Int64("examples");
    for (const absl::Status* status :
         {&site.status(), &sha256.status(), &bytes.status(), &examples.status()}) {
      if (!status->ok()) {
        return absl::DataLossError(
            absl::StrCat(what, "the log's entry has a bad detail: ", status->message()));
      }
    }
    if (*site != receipt.site()) return differs("site", *site, receipt.site());
    const std::string receipt_sha256 = HexEncode(receipt.sha256());
    if (*sha256 != receipt_sha256) {
      return differs("sha256", Short(*sha256), Short(receipt_sha256));
    }
    if (*bytes != receipt.bytes_received()) {
      return differs("bytes", *bytes, receipt.bytes_received());
    }
    if (*examples != receipt.examples()) {
      return differs("examples", *examples, receipt.examples());
    }
  }
  return absl::OkStatus();
}

std::string UpdateReceivedDetail(const std::string& site, uint64_t bytes,
                                 const std::string& sha256_hex, int64_t examples) {
  // nlohmann::json keeps object keys sorted, which makes this canonical.
  Json detail;
  detail["bytes"] = bytes;
  detail["examples"] = examples;
  detail["sha256"] = sha256_hex;
  detail["site"] = site;
  return DumpJson(detail);
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

absl::Status WriteExport(const std::string& path, const ExportedLog& log) {
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
  return ReplaceFile(path, contents);
}

absl::StatusOr<ExportedLog> ReadExport(const std::string& path) {
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
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
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(dir, error);
  if (!fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat("receipt folder '", dir, "' does not exist"));
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
        absl::StrCat("cannot list receipt folder '", dir, "': ", error.message()));
  }
  std::sort(paths.begin(), paths.end());

  std::vector<v1::UploadReceipt> receipts;
  receipts.reserve(paths.size());
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
    absl::StatusOr<v1::UploadReceipt> receipt = ReceiptFromJson(contents);
    if (!receipt.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("receipt file '", path, "': ", receipt.status().message()));
    }
    receipts.push_back(*std::move(receipt));
  }
  return receipts;
}

std::string ReceiptFileName(const v1::UploadReceipt& receipt) {
  return absl::StrCat("run-", receipt.run_id(), "-round-", receipt.round(), ".json");
}

}  // namespace fedmi::audit
