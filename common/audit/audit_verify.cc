#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/audit/audit_json.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"

// Offline verification of a log, its signer and the receipts sites kept
// (declared in audit.h).

namespace fedmi::audit {
namespace {

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
  // A coordinator's TLS certificate is refused by name: a log it signed
  // was sealed by a key the coordinator's operator holds alone.
  const char* wanted = PartyRoleName(PartyRole::kAuditSigner);
  if (signer->role_name != wanted) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the log's signer certificate '", signer->common_name, "' has role '", signer->role_name,
        "', not '", wanted, "': only a separate audit-signing key may sign the log"));
  }
  if (!signer->audit_signing || signer->client_auth || signer->server_auth) {
    return absl::PermissionDeniedError(
        absl::StrCat("the log's signer certificate '", signer->common_name,
                     "' lacks the audit-signing extended key usage or also allows TLS"));
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

}  // namespace fedmi::audit
