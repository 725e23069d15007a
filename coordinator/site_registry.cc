#include "coordinator/site_registry.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "coordinator/run_status.h"

namespace fedmi {

SiteRegistry::SiteRegistry(Storage* storage, const Clock* clock, AuditLog* audit)
    : storage_(storage), clock_(clock), audit_(audit) {}

SiteRegistry::~SiteRegistry() {
  for (auto& [name, session] : sessions_) {
    session.channel->Close(absl::UnavailableError("coordinator is shutting down"));
  }
}

void SiteRegistry::Audit(const std::string& actor, audit::Action action,
                         const nlohmann::json& detail) {
  if (audit_ != nullptr) audit_->Record(actor, action, 0, -1, detail);
}

namespace {

// What a revoked site is told, at every refusal alike (docs/security.md):
// who revoked it and why, so that its operator need not ask.
absl::Status RevokedSiteError(const std::string& site, const std::string& revoked_by,
                              const std::string& reason) {
  return absl::PermissionDeniedError(
      absl::StrCat("site '", site, "' was revoked by ", revoked_by,
                   reason.empty() ? "" : absl::StrCat(": ", reason)));
}

}  // namespace

void SiteRegistry::Load(const std::vector<SiteRecord>& sites) {
  for (const auto& site : sites) known_[site.name] = site;
}

absl::Status SiteRegistry::CheckNotRevoked(const std::string& site) const {
  auto known = known_.find(site);
  if (known == known_.end() || !known->second.revoked()) return absl::OkStatus();
  const SiteRecord& record = known->second;
  return RevokedSiteError(site, record.revoked_by, record.revocation_reason);
}

absl::StatusOr<SiteRecord> SiteRegistry::RecordHello(const Caller& caller, const v1::Hello& hello) {
  const double now = clock_->NowUnixSeconds();
  SiteRecord record;
  auto known = known_.find(caller.name);
  if (known != known_.end()) record = known->second;
  if (record.revoked()) {
    return RevokedSiteError(caller.name, record.revoked_by, record.revocation_reason);
  }
  record.name = caller.name;
  record.certificate_expires = caller.certificate_expires;
  const bool first_time = record.registered_at == 0;
  if (first_time) record.registered_at = now;
  record.last_seen = now;
  record.train_examples = hello.train_examples();
  record.val_examples = hello.val_examples();
  RETURN_IF_ERROR(storage_->UpsertSite(record));
  known_[caller.name] = record;
  if (first_time) {
    Audit(caller.name, audit::Action::kSiteRegistered,
          {{"site", caller.name}, {"certificate_expires", caller.certificate_expires}});
  }
  Audit(caller.name, audit::Action::kSiteConnected,
        {{"site", caller.name},
         {"train_examples", hello.train_examples()},
         {"val_examples", hello.val_examples()},
         {"version", hello.version()}});
  return record;
}

bool SiteRegistry::EndSession(const std::string& site, const absl::Status& why) {
  auto existing = sessions_.find(site);
  if (existing == sessions_.end()) return false;
  existing->second.channel->Close(why);
  sessions_.erase(existing);
  return true;
}

uint64_t SiteRegistry::StartSession(const SiteRecord& record,
                                    std::shared_ptr<SiteChannel> channel) {
  Session session;
  session.id = next_session_++;
  session.channel = std::move(channel);
  session.record = record;
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_site(record.name);
  welcome.mutable_welcome()->set_coordinator_version("0.1.0");
  session.channel->Send(welcome);
  const uint64_t id = session.id;
  sessions_[record.name] = std::move(session);
  return id;
}

bool SiteRegistry::SessionEnded(const std::string& site, uint64_t session) {
  auto it = sessions_.find(site);
  if (it == sessions_.end() || it->second.id != session) return false;
  SiteRecord record = it->second.record;
  record.last_seen = clock_->NowUnixSeconds();
  known_[site] = record;
  // Only last contact is lost if this fails; the session ends regardless.
  (void)storage_->UpsertSite(record);
  sessions_.erase(it);
  Audit(site, audit::Action::kSiteDisconnected, {{"site", site}});
  return true;
}

absl::Status SiteRegistry::Touch(const std::string& site) {
  auto session = sessions_.find(site);
  if (session == sessions_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site, "' has no open session; send hello first"));
  }
  session->second.record.last_seen = clock_->NowUnixSeconds();
  known_[site].last_seen = session->second.record.last_seen;
  return absl::OkStatus();
}

absl::StatusOr<bool> SiteRegistry::Revoke(const std::string& site, const std::string& revoked_by,
                                          const std::string& reason) {
  SiteRecord record;
  auto known = known_.find(site);
  if (known != known_.end()) record = known->second;
  if (record.revoked()) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' is already revoked"));
  }
  const double now = clock_->NowUnixSeconds();
  record.name = site;
  if (record.registered_at == 0) record.registered_at = now;
  record.revoked_at = now;
  record.revoked_by = revoked_by;
  record.revocation_reason = reason;
  // Stored first: a crash right after must not bring the site back.
  RETURN_IF_ERROR(storage_->UpsertSite(record));
  known_[site] = record;
  Audit(revoked_by, audit::Action::kSiteRevoked, {{"site", site}, {"reason", reason}});
  return EndSession(site, RevokedSiteError(site, revoked_by, reason));
}

std::vector<v1::SiteInfo> SiteRegistry::List() const {
  std::vector<v1::SiteInfo> out;
  for (const auto& [name, record] : known_) {
    out.push_back(SiteInfoOf(record, sessions_.count(name) > 0));
  }
  return out;
}

std::vector<RevocationRecord> SiteRegistry::Revocations() const {
  std::vector<RevocationRecord> out;
  for (const auto& [name, record] : known_) {
    if (!record.revoked()) continue;
    out.push_back(
        {name, PartyRole::kSite, record.revoked_at, record.revoked_by, record.revocation_reason});
  }
  return out;
}

std::vector<std::string> SiteRegistry::ConnectedSites() const {
  std::vector<std::string> names;
  for (const auto& [name, session] : sessions_) {
    if (session.channel->open()) names.push_back(name);
  }
  return names;
}

int64_t SiteRegistry::TrainExamples(const std::string& site) const {
  auto it = sessions_.find(site);
  return it == sessions_.end() ? 0 : it->second.record.train_examples;
}

bool SiteRegistry::Send(const std::string& site, const v1::CoordinatorMessage& message) {
  auto it = sessions_.find(site);
  return it != sessions_.end() && it->second.channel->Send(message);
}

}  // namespace fedmi
