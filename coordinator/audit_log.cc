#include "coordinator/audit_log.h"

#include <chrono>

#include "common/base/log.h"
#include "common/base/status.h"

namespace fedmi {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    Storage* storage, const Clock* clock, std::unique_ptr<audit::AuditSigner> signer) {
  std::unique_ptr<AuditLog> log(new AuditLog(storage, clock, std::move(signer)));
  absl::StatusOr<v1::AuditEntry> last = storage->LastAuditEntry();
  if (last.status().code() == absl::StatusCode::kNotFound) return log;
  RETURN_IF_ERROR(last.status());
  absl::StatusOr<StoredAuditHead> head = storage->GetAuditHead();
  if (!head.ok() && head.status().code() != absl::StatusCode::kNotFound) return head.status();
  {
    absl::MutexLock lock(&log->mu_);
    log->last_ = *last;
  }
  const bool head_matches =
      head.ok() && head->head.seq() == last->seq() && head->head.hash() == last->hash();
  if (!head_matches) {
    nlohmann::json detail = {{"last_stored_seq", last->seq()}};
    if (head.ok()) {
      detail["head_seq"] = head->head.seq();
      detail["head_hash"] = head->head.hash();
    } else {
      detail["head_seq"] = nullptr;
    }
    FEDMI_LOG(ERROR) << "audit log: the newest stored entry is " << last->seq()
                     << " but the signed head names "
                     << (head.ok() ? std::to_string(head->head.seq()) : std::string("nothing"))
                     << "; recording it in the log";
    RETURN_IF_ERROR(
        log->Append(kCoordinator, audit::Action::kAuditTailMissing, 0, -1, detail).status());
  }
  return log;
}

absl::StatusOr<v1::AuditEntry> AuditLog::Append(const std::string& actor, audit::Action action,
                                                int64_t run_id, int32_t round,
                                                const nlohmann::json& detail) {
  const auto started = std::chrono::steady_clock::now();
  v1::AuditEntry draft;
  draft.set_time(audit::FormatTime(clock_->Now()));
  draft.set_actor(actor);
  draft.set_action(audit::ActionName(action));
  draft.set_run_id(run_id);
  draft.set_round(round);
  // nlohmann's objects keep keys sorted, so one event always serializes the same way.
  draft.set_detail_json(detail.is_null() ? "{}" : detail.dump());

  absl::MutexLock lock(&mu_);
  const v1::AuditEntry* previous = last_.has_value() ? &*last_ : nullptr;
  v1::AuditEntry entry;
  StoredAuditHead head;
  if (signer_ != nullptr) {
    ASSIGN_OR_RETURN(entry, signer_->Seal(std::move(draft), previous));
    ASSIGN_OR_RETURN(head.head, signer_->SignHead(entry));
    head.signer_certificate_pem = signer_->certificate_pem();
  } else {
    entry = audit::SealUnsigned(std::move(draft), previous);
    head.head.set_seq(entry.seq());
    head.head.set_hash(entry.hash());
  }
  RETURN_IF_ERROR(storage_->AppendAudit(entry, head));
  last_ = entry;
  if (signer_ != nullptr) signed_head_ = head.head;
  ++appended_;
  append_seconds_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return entry;
}

void AuditLog::Record(const std::string& actor, audit::Action action, int64_t run_id, int32_t round,
                      const nlohmann::json& detail) {
  absl::StatusOr<v1::AuditEntry> entry = Append(actor, action, run_id, round, detail);
  if (!entry.ok()) {
    FEDMI_LOG(ERROR) << "audit log: cannot record " << audit::ActionName(action) << " by " << actor
                     << ": " << entry.status().message();
  }
}

absl::Status AuditLog::SignReceipt(v1::UploadReceipt* receipt) const {
  if (signer_ == nullptr) return absl::OkStatus();
  return signer_->SignReceipt(receipt);
}

std::optional<v1::SignedAuditHead> AuditLog::SignedHead() {
  if (signer_ == nullptr) return std::nullopt;
  absl::MutexLock lock(&mu_);
  if (!signed_head_.has_value()) return std::nullopt;
  v1::SignedAuditHead signed_head;
  *signed_head.mutable_head() = *signed_head_;
  signed_head.set_signer_certificate_pem(signer_->certificate_pem());
  return signed_head;
}

absl::StatusOr<std::vector<v1::AuditEntry>> AuditLog::List(const v1::AuditQuery& query) {
  return storage_->ListAudit(query);
}

absl::StatusOr<v1::AuditInfo> AuditLog::Info() {
  v1::AuditInfo info;
  ASSIGN_OR_RETURN(int64_t count, storage_->CountAudit());
  info.set_entries(count);
  absl::StatusOr<StoredAuditHead> head = storage_->GetAuditHead();
  if (head.ok()) {
    *info.mutable_head() = head->head;
    info.set_signer_certificate_pem(head->signer_certificate_pem);
  } else if (head.status().code() != absl::StatusCode::kNotFound) {
    return head.status();
  }
  if (signer_ != nullptr) info.set_signer_certificate_pem(signer_->certificate_pem());
  absl::MutexLock lock(&mu_);
  info.set_appended(appended_);
  info.set_append_seconds(append_seconds_);
  return info;
}

}  // namespace fedmi
