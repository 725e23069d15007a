#include "common/audit/audit.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_json.h"
#include "common/base/byte_order.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"

// The canonical encodings that are hashed and signed, and sealing entries,
// heads and receipts with the coordinator's key. Verification is in
// audit_verify.cc, the auditor's files in audit_files.cc.

namespace fedmi::audit {
namespace {

constexpr char kEntryTag[] = "fedmi/audit/entry/v1";
constexpr char kHeadTag[] = "fedmi/audit/head/v1";
constexpr char kReceiptTag[] = "fedmi/audit/receipt/v1";
constexpr char kProbeData[] = "fedmi/audit/probe/v1";

// ---------------------------------------------------------------------------
// Canonical encoding: every integer as 8 big-endian bytes (two's
// complement, whatever its width in the proto), every string as its 8-byte
// length and then its bytes. The tag first names what is signed, so an entry's
// signature can never pass as a receipt's.

void AppendField(std::string* out, absl::string_view value) {
  AppendBigEndian64(out, value.size());
  out->append(value.data(), value.size());
}
template <typename Int, std::enable_if_t<std::is_integral_v<Int>, int> = 0>
void AppendField(std::string* out, Int value) {
  AppendBigEndian64(out, static_cast<uint64_t>(value));
}

template <typename... Fields>
std::string CanonicalBytes(absl::string_view tag, const Fields&... fields) {
  std::string out;
  AppendField(&out, tag);
  (AppendField(&out, fields), ...);
  return out;
}

bool IsHexHash(const std::string& text) {
  std::string ignored;
  return text.size() == 64 && HexDecode(text, &ignored);
}

// Sets the fields that place `entry` after `previous` and clears the seal.
void Chain(v1::AuditEntry* entry, const v1::AuditEntry* previous) {
  entry->set_seq(previous == nullptr ? 1 : previous->seq() + 1);
  entry->set_prev_hash(previous == nullptr ? kGenesisHash : previous->hash());
  entry->clear_hash();
  entry->clear_signature();
}

}  // namespace

// ---------------------------------------------------------------------------
// Encodings.

std::string CanonicalEntryBytes(const v1::AuditEntry& entry) {
  return CanonicalBytes(kEntryTag, entry.seq(), entry.time(), entry.actor(), entry.action(),
                        entry.run_id(), entry.round(), entry.detail_json(), entry.prev_hash());
}

std::string EntryHash(const v1::AuditEntry& entry) {
  return HexEncode(Sha256::Digest(CanonicalEntryBytes(entry)));
}

std::string HeadBytes(int64_t seq, const std::string& hash_hex) {
  return CanonicalBytes(kHeadTag, seq, hash_hex);
}

std::string ReceiptBytes(const v1::UploadReceipt& receipt) {
  return CanonicalBytes(kReceiptTag, receipt.run_id(), receipt.round(), receipt.site(),
                        receipt.sha256(), receipt.bytes_received(), receipt.examples(),
                        receipt.audit_seq(), receipt.audit_hash(), receipt.time());
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

}  // namespace fedmi::audit
