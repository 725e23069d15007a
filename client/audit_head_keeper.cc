#include "client/audit_head_keeper.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit.h"
#include "common/base/status.h"
#include "common/crypto/signing.h"

namespace fedmi {

AuditHeadKeeper::AuditHeadKeeper(std::string heads_dir, std::string ca_file, Env& env,
                                 const Clock& clock)
    : heads_dir_(std::move(heads_dir)), ca_file_(std::move(ca_file)), env_(env), clock_(clock) {}

absl::Status AuditHeadKeeper::LoadHeld() {
  if (loaded_) return absl::OkStatus();
  ASSIGN_OR_RETURN(ca_pem_, env_.ReadFile(ca_file_));
  RETURN_IF_ERROR(env_.CreateDirs(heads_dir_));
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(heads_dir_));
  for (const std::string& name : names) {
    if (!absl::EndsWith(name, ".json")) continue;
    const std::string path = absl::StrCat(heads_dir_, "/", name);
    ASSIGN_OR_RETURN(std::string json, env_.ReadFile(path));
    absl::StatusOr<audit::HeldHead> held = audit::HeldHeadFromJson(json);
    if (!held.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", held.status().message()));
    }
    held_[held->head.seq()].insert(held->head.hash());
  }
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status AuditHeadKeeper::Keep(const v1::SignedAuditHead& signed_head, Channel channel,
                                   const std::string& via) {
  if (heads_dir_.empty() || !signed_head.has_head()) return absl::OkStatus();
  RETURN_IF_ERROR(LoadHeld());
  const v1::AuditHead& head = signed_head.head();
  const std::string what = absl::StrCat("the audit head seq ", head.seq(), " with ", via);
  // A head signed by anything but an audit signer of this project, e.g. the
  // coordinator's TLS key, is what a rewritten log would come with.
  absl::Status signer = audit::VerifySigner(signed_head.signer_certificate_pem(), ca_pem_);
  if (!signer.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", signer.message()));
  }
  if (!VerifyWithCertificatePem(signed_head.signer_certificate_pem(),
                                audit::HeadBytes(head.seq(), head.hash()), head.signature())
           .ok()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": bad signature"));
  }

  std::string violation;
  auto same_seq = held_.find(head.seq());
  if (same_seq != held_.end() && same_seq->second.count(head.hash()) == 0) {
    violation = absl::StrCat(what, " names hash ", head.hash(), " but this site holds a head for ",
                             "the same entry with hash ", *same_seq->second.begin(),
                             ": the coordinator signed two different logs");
  }
  int64_t& newest = newest_[channel];
  if (violation.empty() && head.seq() < newest) {
    violation = absl::StrCat(what, " goes backwards: this site was shown entry ", newest,
                             " before; entries were removed from the log");
  }
  newest = std::max(newest, head.seq());

  if (same_seq == held_.end() || same_seq->second.count(head.hash()) == 0) {
    audit::HeldHead held;
    held.head = head;
    held.received_at = audit::FormatTime(clock_.Now());
    held.via = via;
    RETURN_IF_ERROR(WriteFileAtomically(
        env_, absl::StrCat(heads_dir_, "/", audit::HeldHeadFileName(head)),
        absl::StrCat(audit::HeldHeadToJson(held), "\n"), 0644, Publish::kExclusive));
    held_[head.seq()].insert(head.hash());
  }
  if (!violation.empty()) return absl::FailedPreconditionError(violation);
  return absl::OkStatus();
}

}  // namespace fedmi
