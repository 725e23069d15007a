// AuditLog: the coordinator's append-only, hash-chained, signed record of
// every security-relevant event (docs/audit.md). Each entry is sealed with
// common/audit.h (hash over a canonical encoding, chained to the previous
// entry, signed with the coordinator's audit key, never its TLS key) and
// stored with a freshly signed head in one Storage transaction, so deleting
// entries from the end is detected too. The newest head goes to sites with
// every task and receipt (SignedHead), and they keep it.
//
// Without a key (a coordinator running --insecure) entries are chained but
// unsigned, and `fedmi audit verify` says so.
//
// Thread-safe: one mutex orders appends. Callers may hold Federation's lock
// when they append; AuditLog never calls back into them.
#ifndef FEDMI_COORDINATOR_AUDIT_LOG_H_
#define FEDMI_COORDINATOR_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/audit/audit.h"
#include "common/audit/audit_actions.h"
#include "common/base/clock.h"
#include "coordinator/storage.h"
#include "fedmi/v1/audit.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

class AuditLog {
 public:
  // Actor of entries the coordinator makes on its own behalf.
  static constexpr char kCoordinator[] = "coordinator";

  // Loads the newest entry to chain on. When it disagrees with the stored
  // head (entries were removed from the end of the log while the coordinator
  // was down), appends an "audit.tail_missing" entry that records the
  // discrepancy, so it stays visible to `fedmi audit verify`.
  // `signer` may be null (unsigned log).
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(Storage* storage, const Clock* clock,
                                                        std::unique_ptr<audit::AuditSigner> signer);

  // Seals and stores one entry. `round` is -1 and `run_id` 0 when not about
  // one. Errors from hashing, signing or storage are returned.
  absl::StatusOr<v1::AuditEntry> Append(const std::string& actor, audit::Action action,
                                        int64_t run_id, int32_t round,
                                        const nlohmann::json& detail);
  // Append for events that have already happened and cannot be undone: a
  // failure is logged (the event is then missing from the log, which the
  // log's readers are told in the coordinator's log) rather than returned.
  void Record(const std::string& actor, audit::Action action, int64_t run_id, int32_t round,
              const nlohmann::json& detail);

  // Signs `receipt` (whose audit_seq and audit_hash name its entry); leaves
  // it unsigned without a key.
  absl::Status SignReceipt(v1::UploadReceipt* receipt) const;

  absl::StatusOr<std::vector<v1::AuditEntry>> List(const v1::AuditQuery& query);
  absl::StatusOr<v1::AuditInfo> Info();

  // The head of the newest entry this process appended, signed, with the
  // signer's certificate: what tasks and receipts carry to sites. nullopt
  // without a key or before the first append.
  std::optional<v1::SignedAuditHead> SignedHead();

  bool signed_log() const { return signer_ != nullptr; }

 private:
  AuditLog(Storage* storage, const Clock* clock, std::unique_ptr<audit::AuditSigner> signer)
      : storage_(storage), clock_(clock), signer_(std::move(signer)) {}

  Storage* storage_;
  const Clock* clock_;
  std::unique_ptr<audit::AuditSigner> signer_;

  absl::Mutex mu_;
  std::optional<v1::AuditEntry> last_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::AuditHead> signed_head_ ABSL_GUARDED_BY(mu_);
  int64_t appended_ ABSL_GUARDED_BY(mu_) = 0;
  double append_seconds_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_AUDIT_LOG_H_
