// Federation: revocation of sites, admins and auditors by name, and the check
// every authenticated call passes (name revocations and the project CRL).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "coordinator/federation.h"

namespace fedmi {
namespace {

absl::Status RevokedError(const RevocationRecord& record) {
  return absl::PermissionDeniedError(absl::StrCat(
      PartyRoleName(record.role), " '", record.name, "' was revoked by ", record.revoked_by,
      record.reason.empty() ? "" : absl::StrCat(": ", record.reason)));
}

// The role a revocation is for: the one given, or site for a site this
// coordinator knows. InvalidArgument when the two disagree or neither is.
absl::StatusOr<PartyRole> RoleToRevoke(const std::string& name, std::optional<PartyRole> role,
                                       bool known_site) {
  if (role == PartyRole::kCoordinator || role == PartyRole::kAuditSigner) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a ", PartyRoleName(*role),
        " is not revoked at the coordinator: renew its certificate (fedmi provision renew) "
        "and list the old one in the CRL"));
  }
  if (known_site && role.has_value() && *role != PartyRole::kSite) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name, "' is a registered site, not an ", PartyRoleName(*role)));
  }
  if (role.has_value()) return *role;
  if (known_site) return PartyRole::kSite;
  // Admins and auditors never register, so a typo must not pass for one.
  return absl::InvalidArgumentError(
      absl::StrCat("'", name,
                   "' is not a site this coordinator knows; say which role it holds "
                   "(site, admin or auditor)"));
}

}  // namespace

absl::StatusOr<RevocationRecord> Federation::Revoke(const Caller& caller, const std::string& name,
                                                    std::optional<PartyRole> role,
                                                    const std::string& reason) {
  if (caller.role != PartyRole::kAdmin) {
    RecordDenied(caller.name, "Revoke", "only an admin may revoke a party");
    return absl::PermissionDeniedError("only an admin may revoke a party");
  }
  RETURN_IF_ERROR(ValidatePartyName(name, "name"));
  if (name == caller.name) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", name,
                     "' cannot revoke itself; another admin must, so that a slip "
                     "cannot lock a project out"));
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const PartyRole revoked_role, RoleToRevoke(name, role, sites_.Knows(name)));
  if (revoked_role != PartyRole::kSite) return RevokeParty(caller, name, revoked_role, reason);

  if (revoked_parties_.count(name) > 0) {
    return absl::FailedPreconditionError(absl::StrCat("'", name, "' is already revoked"));
  }
  ASSIGN_OR_RETURN(const bool was_connected, sites_.Revoke(name, caller.name, reason));
  if (was_connected) {
    const std::string why =
        absl::StrCat("revoked by ", caller.name, reason.empty() ? "" : absl::StrCat(": ", reason));
    for (auto& [id, run] : runs_) run->OnSiteDisconnected(name, why);
  }
  ReapFinishedRuns();
  Changed();
  for (RevocationRecord& record : sites_.Revocations()) {
    if (record.name == name) return record;
  }
  return absl::InternalError(absl::StrCat("site '", name, "' revoked but not listed"));
}

absl::StatusOr<RevocationRecord> Federation::RevokeParty(const Caller& caller,
                                                         const std::string& name, PartyRole role,
                                                         const std::string& reason) {
  if (revoked_parties_.count(name) > 0) {
    return absl::FailedPreconditionError(absl::StrCat("'", name, "' is already revoked"));
  }
  RevocationRecord record{name, role, clock_->NowUnixSeconds(), caller.name, reason};
  // Stored first: a crash right after must not bring the party back.
  RETURN_IF_ERROR(storage_->AddRevocation(record));
  revoked_parties_[name] = record;
  FEDMI_LOG(WARNING) << PartyRoleName(role) << " '" << name << "' revoked by " << caller.name;
  Audit(caller.name, audit::Action::kPartyRevoked, 0,
        {{"name", name}, {"role", PartyRoleName(role)}, {"reason", reason}});
  // Wakes every WatchRun, which then finds its caller revoked.
  Changed();
  return record;
}

absl::StatusOr<std::vector<RevocationRecord>> Federation::ListRevocations() {
  absl::MutexLock lock(&mu_);
  std::vector<RevocationRecord> all = sites_.Revocations();
  for (const auto& [name, record] : revoked_parties_) all.push_back(record);
  std::sort(all.begin(), all.end(),
            [](const RevocationRecord& a, const RevocationRecord& b) { return a.name < b.name; });
  return all;
}

absl::Status Federation::CheckNotRevoked(const Caller& caller) {
  if (!caller.certificate_serial.empty() && options_.crl.Lists(caller.certificate_serial)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate of '", caller.name, "' (serial ", caller.certificate_serial,
        ") is revoked by the project CRL of ", FormatCertificateTime(options_.crl.issued_at())));
  }
  absl::MutexLock lock(&mu_);
  return CheckNameNotRevoked(caller.name);
}

absl::Status Federation::CheckNameNotRevoked(const std::string& name) {
  auto party = revoked_parties_.find(name);
  if (party != revoked_parties_.end()) return RevokedError(party->second);
  return sites_.CheckNotRevoked(name);
}

}  // namespace fedmi
