// The coordinator's tamper-evident audit log, without transport or storage:
// the byte encodings that are hashed and signed, sealing entries into a hash
// chain signed with the coordinator's key, offline verification of a log and
// of the upload receipts sites kept, and the file formats an auditor handles
// (a JSON Lines export and one JSON file per receipt). See docs/audit.md.
//
// Every entry's hash is the SHA-256 of CanonicalEntryBytes (all its fields
// but hash and signature, prev_hash included), so changing, inserting,
// deleting or reordering entries breaks the chain; each entry and the head
// (the newest entry, signed again) carry an ECDSA P-256 signature by the
// coordinator's audit-signing key, whose audit-signer certificate the project
// CA issued, so an auditor holding only the CA certificate can check an
// export. That key is not the coordinator's TLS key: a log signed with the
// TLS key is refused, so the TLS key alone cannot rewrite history.
//
// Free functions are thread-safe (they share no state). Verification errors
// are DataLoss (PermissionDenied for an unacceptable signer) and name the
// first problem and the entry it is in; file errors name the file and line.
#ifndef FEDMI_COMMON_AUDIT_AUDIT_H_
#define FEDMI_COMMON_AUDIT_AUDIT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/env.h"
#include "common/crypto/signing.h"
#include "fedmi/v1/audit.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi::audit {

// The prev_hash of entry 1.
inline constexpr char kGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The action of the entry that records a received update; receipts point at it.
inline constexpr char kUpdateReceivedAction[] = "update.received";
// Written by the coordinator when, at start, the newest stored entry is not
// the one its signed head names (entries were deleted from the end while it
// was down). VerifyLog reports it as a failure.
inline constexpr char kTailMissingAction[] = "audit.tail_missing";

// What is hashed and signed for an entry: the tag "fedmi/audit/entry/v1",
// then seq, time, actor, action, run_id, round, detail_json and prev_hash.
// Strings are prefixed with their length (8 bytes, big-endian), integers are
// 8 bytes big-endian two's complement, so no two entries share an encoding.
std::string CanonicalEntryBytes(const v1::AuditEntry& entry);
// Lower-case hex SHA-256 of CanonicalEntryBytes(entry).
std::string EntryHash(const v1::AuditEntry& entry);
// What the head's signature covers: the tag "fedmi/audit/head/v1", seq, hash.
std::string HeadBytes(int64_t seq, const std::string& hash_hex);
// What a receipt's signature covers: the tag "fedmi/audit/receipt/v1" and
// every field but signature, encoded as in CanonicalEntryBytes.
std::string ReceiptBytes(const v1::UploadReceipt& receipt);

// UTC, RFC 3339 with microseconds (truncated): "2026-11-28T23:33:19.123456Z".
std::string FormatTime(absl::Time t);
// Any RFC 3339 time ("Z" or a numeric offset, any number of fractional
// digits). InvalidArgument naming the text otherwise.
absl::StatusOr<absl::Time> ParseTime(const std::string& text);

// Seals entries, heads and receipts with the coordinator's audit-signing key.
// Immutable after Create, so thread-safe. Holds the key in memory.
class AuditSigner {
 public:
  // `key_pem` is the audit-signing key, `cert_pem` its certificate.
  // InvalidArgument if the key cannot sign or does not belong to the
  // certificate (checked by signing and verifying a probe). Does not check
  // who issued the certificate: that is the verifier's job (VerifySigner).
  static absl::StatusOr<std::unique_ptr<AuditSigner>> Create(std::string key_pem,
                                                             std::string cert_pem);

  // The draft's time, actor, action, run_id, round and detail_json are kept;
  // seq becomes previous->seq + 1 (1 without previous), prev_hash
  // previous->hash (kGenesisHash without previous), then hash and signature
  // are set. InvalidArgument if previous->hash is not 64 hex digits; Internal
  // if signing fails.
  absl::StatusOr<v1::AuditEntry> Seal(v1::AuditEntry draft, const v1::AuditEntry* previous) const;
  // The head naming `last` (its seq and hash, not recomputed), signed.
  absl::StatusOr<v1::AuditHead> SignHead(const v1::AuditEntry& last) const;
  // Sets receipt->signature over ReceiptBytes(*receipt).
  absl::Status SignReceipt(v1::UploadReceipt* receipt) const;

  const std::string& certificate_pem() const { return cert_pem_; }

 private:
  AuditSigner(std::unique_ptr<SigningKey> key, std::string cert_pem)
      : key_(std::move(key)), cert_pem_(std::move(cert_pem)) {}

  absl::StatusOr<std::string> Sign(const std::string& data) const;

  const std::unique_ptr<SigningKey> key_;
  const std::string cert_pem_;
};

// The coordinator's signer: reads the audit-signing key and certificate from
// their files and checks the certificate is an audit signer of the project
// CA in `ca_file` (VerifySigner), so that a coordinator never writes a log
// that `fedmi audit verify` would refuse. FailedPrecondition naming the
// missing flag when a file name is empty (a kit from before audit signers:
// `fedmi provision add-audit-signer`); the file's error naming it; Create's
// and VerifySigner's errors otherwise.
absl::StatusOr<std::unique_ptr<AuditSigner>> LoadAuditSigner(const std::string& key_file,
                                                             const std::string& cert_file,
                                                             const std::string& ca_file,
                                                             Env& env = *Env::Default());

// Seal's chaining and hashing without a signature, for a coordinator running
// --insecure (it has no key). Such a log fails VerifyLog.
v1::AuditEntry SealUnsigned(v1::AuditEntry draft, const v1::AuditEntry* previous);

// OK if `signer_cert_pem` was issued by the project CA in `ca_pem`, its role
// (OU) is "audit-signer" and its extended key usage is audit signing and
// nothing else (a coordinator's TLS certificate is refused). The chain is checked at the current
// time, clamped into the period both certificates are valid, so a log stays verifiable after its
// signer's certificate expires. PermissionDenied naming the reason ("the log's signer certificate
// is not issued by the project CA: ..."); InvalidArgument if `ca_pem` holds no certificate.
absl::Status VerifySigner(const std::string& signer_cert_pem, const std::string& ca_pem);

struct VerifyReport {
  int64_t entries = 0;
  int64_t first_seq = 0;
  int64_t last_seq = 0;
};

// Verifies a whole log, `entries` in the order stored. Checks the signer
// (VerifySigner), then each entry in turn: its hash (recomputed), its place
// in the sequence (entry 1 first, then +1 each), the chain (prev_hash is the
// previous entry's hash, kGenesisHash for entry 1) and its signature; then
// that `head` is signed by the signer and names the last entry's seq and
// hash. Returns the first problem, naming the entry:
//   "entry 17: bad hash: stored 3f2a..., computed 9b1c..."
//   "entry 18: broken chain: prev_hash 11aa... is not the hash of entry 17"
//   "entry 19: bad signature"
//   "gap in sequence: entry 22 follows entry 20 (entry 21 is missing)"
//   "entry 5 out of order: it follows entry 7"
//   "entries after 41 are missing: the signed head names entry 45"
//   "the log's head is not signed by the coordinator", "the log is empty"
// as DataLoss, or the signer's PermissionDenied. Entries after the one the
// head names are refused too ("entry 46: after the signed head ..."): nothing
// protects them against deletion.
absl::StatusOr<VerifyReport> VerifyLog(const std::vector<v1::AuditEntry>& entries,
                                       const v1::AuditHead& head,
                                       const std::string& signer_cert_pem,
                                       const std::string& ca_pem);

// Checks receipts against a log (verify the log itself with VerifyLog, and
// the signer with VerifySigner). For each receipt: its signature by
// `signer_cert_pem`, then the entry with seq == audit_seq: its hash is
// audit_hash, its action "update.received", its run_id, round and time are
// the receipt's, and its detail_json (UpdateReceivedDetail) names the same
// site, sha256, bytes and examples. DataLoss naming the first problem:
//   "receipt of site 'site-2' for run 1 round 3 (entry 57): missing from the log"
//   "receipt of site 'site-2' for run 1 round 3 (entry 57): the log's entry differs (sha256 ...)"
//   "receipt of site 'site-2' for run 1 round 3 (entry 57): bad signature"
absl::Status VerifyReceipts(const std::vector<v1::UploadReceipt>& receipts,
                            const std::vector<v1::AuditEntry>& entries,
                            const std::string& signer_cert_pem);

// The detail_json of an update.received entry, canonical JSON (sorted keys,
// no spaces): {"bytes":N,"examples":N,"sha256":"hex","site":"name"}.
std::string UpdateReceivedDetail(const std::string& site, uint64_t bytes,
                                 const std::string& sha256_hex, int64_t examples);

// An audit log as exported to a file.
//
// The file is JSON Lines. Line 1 is the header:
//   {"format":"fedmi-audit-v1","signer_certificate":"<PEM>",
//    "head":{"seq":N,"hash":"<hex>","signature":"<base64>"},"exported_at":"<RFC 3339>"}
// then one entry per line (EntryToJsonLine), in order:
//   {"seq":N,"time":"..","actor":"..","action":"..","run_id":N,"round":N,
//    "detail":"<detail_json, verbatim, as a JSON string>","prev_hash":"..",
//    "hash":"..","signature":"<base64>"}
// "detail" is a string, not an object, so the bytes that were hashed survive
// a round trip; `jq '.detail | fromjson'` shows it as an object.
struct ExportedLog {
  std::string signer_certificate_pem;
  v1::AuditHead head;
  std::vector<v1::AuditEntry> entries;
  // RFC 3339. WriteExport writes the current time when empty.
  std::string exported_at;
};

// One entry as a line of the export, without the trailing newline.
std::string EntryToJsonLine(const v1::AuditEntry& entry);
// Writes `log` to `path` through `env` as an AtomicFile (fsynced, then
// renamed into place with its directory fsynced), so readers see the old
// file or the whole new one. Errors name the path (NotFound,
// PermissionDenied, ResourceExhausted for a full disk, Internal).
absl::Status WriteExport(const std::string& path, const ExportedLog& log,
                         Env& env = *Env::Default());
// Reads an export. NotFound/PermissionDenied naming the path; InvalidArgument
// naming the line for a malformed one ("line 7: field 'seq' is missing").
// Parses only: verify the result with VerifyLog.
absl::StatusOr<ExportedLog> ReadExport(const std::string& path, Env& env = *Env::Default());

// A receipt as a file: one JSON object with every field by name, sha256 in
// hex and signature in base64, indented, without a trailing newline.
std::string ReceiptToJson(const v1::UploadReceipt& receipt);
// InvalidArgument naming the missing or malformed field.
absl::StatusOr<v1::UploadReceipt> ReceiptFromJson(const std::string& json);
// Reads every *.json file in `dir`, in order of file name. NotFound if `dir`
// does not exist; InvalidArgument naming a file that is not a receipt.
absl::StatusOr<std::vector<v1::UploadReceipt>> ReadReceiptsDir(const std::string& dir);
// "run-<run>-round-<round>.json": a site keeps one receipt per round.
std::string ReceiptFileName(const v1::UploadReceipt& receipt);

// A signed head of the log as a site kept it: the coordinator sends one with
// every task and receipt, and the site keeps each distinct one in
// HeldHeadsDir(receipts_dir). Since an entry's hash commits to every entry
// before it, a head the site holds pins the log up to its seq: whoever later
// rewrites or drops one of those entries cannot make the log match it again.
struct HeldHead {
  v1::AuditHead head;
  std::string received_at;  // RFC 3339, by the site's clock
  std::string via;          // what carried it: "train task run 1 round 4", "receipt run 1 round 3"
};

// One JSON object: seq, hash, signature (base64), received_at, via; indented,
// no trailing newline.
std::string HeldHeadToJson(const HeldHead& held);
// InvalidArgument naming the missing or malformed field.
absl::StatusOr<HeldHead> HeldHeadFromJson(const std::string& json);
// "head-<seq, 12 digits>-<16 hex digits of the hash>.json": one file per
// distinct head, so two heads for one seq with different hashes are both kept.
std::string HeldHeadFileName(const v1::AuditHead& head);
// <receipts_dir>/heads.
std::string HeldHeadsDir(const std::string& receipts_dir);
// Reads every *.json file in `dir`, in order of file name. NotFound if `dir`
// does not exist; InvalidArgument naming a file that is not a held head.
absl::StatusOr<std::vector<HeldHead>> ReadHeldHeadsDir(const std::string& dir);

struct HeadsReport {
  int64_t heads = 0;       // distinct, correctly signed heads checked
  int64_t newest_seq = 0;  // the newest of them
  // One sentence per problem, in order of seq; empty when every head is a
  // prefix of the log.
  std::vector<std::string> problems;
};

// Checks the heads a site holds against a log that VerifyLog accepted:
// each must be signed by `signer_cert_pem` and name an entry of the log with
// the same hash. Names what differs:
//   "entry 9 was rewritten: the log's entry 9 has hash ..., head seq 9
//    (received ..., with ...) that the site holds names ...; entries up to 8
//    match head seq 8 (...)"
//   "entries 9..10: at least one was rewritten: ..." when no head pins 9
//   "head seq 12 (received ..., with ...): entries 11..12 are missing from
//    the log, which ends at entry 10"
//   "the log's signer signed two different heads for entry 7: ..."
//   "head seq 5 (...): not signed by the log's signer, so it proves nothing"
// Only the first rewrite is named: the chain carries it into every later head.
HeadsReport CheckHeldHeads(const std::vector<HeldHead>& heads,
                           const std::vector<v1::AuditEntry>& entries,
                           const std::string& signer_cert_pem);

}  // namespace fedmi::audit

#endif  // FEDMI_COMMON_AUDIT_AUDIT_H_
