// SiteRegistry: every site the coordinator knows (its stored SiteRecord:
// registration, last contact, revocation) and the control streams of those
// connected now. Each change is stored before it takes effect, and site
// events (site.registered, .connected, .disconnected, .revoked) are
// recorded in the audit log. It is the SiteRoster through which round
// managers reach sites.
//
// Not thread-safe: Federation calls it under its own mutex, as it calls the
// round managers. Channels are shared with the transport, which drains them.
// Storage failures come back as Status values and change nothing.
#ifndef FEDMI_COORDINATOR_SITE_REGISTRY_H_
#define FEDMI_COORDINATOR_SITE_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "coordinator/audit_log.h"
#include "coordinator/caller.h"
#include "coordinator/round_manager.h"
#include "coordinator/storage.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// A site's control stream, as the core sees it.
class SiteChannel {
 public:
  virtual ~SiteChannel() = default;
  // Queues a message; must not block. False when the stream is closed.
  virtual bool Send(const v1::CoordinatorMessage& message) = 0;
  // Ends the stream with `status` (e.g. when a newer session replaces it).
  virtual void Close(const absl::Status& status) = 0;
  // False once the stream is closing, before its session is removed: such a
  // site must not be selected for new work.
  virtual bool open() { return true; }
};

class SiteRegistry : public SiteRoster {
 public:
  // `audit` may be null (nothing is recorded); none is owned.
  SiteRegistry(Storage* storage, const Clock* clock, AuditLog* audit);
  // Closes every open stream: the coordinator is going away.
  ~SiteRegistry() override;

  // The stored sites, at start-up.
  void Load(const std::vector<SiteRecord>& sites);

  // PermissionDenied, naming who revoked the site and why, if it is revoked.
  absl::Status CheckNotRevoked(const std::string& site) const;

  // Stores the hello of an authenticated site: registers it the first time,
  // refreshes its example counts and last contact. PermissionDenied for a
  // revoked site.
  absl::StatusOr<SiteRecord> RecordHello(const Caller& caller, const v1::Hello& hello);
  // Closes the site's open stream, if any, with `why`. True if it had one.
  bool EndSession(const std::string& site, const absl::Status& why);
  // Opens a session for `record` on `channel` and welcomes the site. Returns
  // the session id that SessionEnded needs.
  uint64_t StartSession(const SiteRecord& record, std::shared_ptr<SiteChannel> channel);
  // The transport saw session `session` of `site` end. False when a newer
  // session has replaced it (nothing changes then).
  bool SessionEnded(const std::string& site, uint64_t session);

  // Notes a message from the site. FailedPrecondition without a session.
  absl::Status Touch(const std::string& site);
  bool HasSession(const std::string& site) const { return sessions_.count(site) > 0; }

  // Revokes `site` for good (stored first), closing its stream. Returns
  // whether it had one. FailedPrecondition when it is already revoked.
  absl::StatusOr<bool> Revoke(const std::string& site, const std::string& revoked_by,
                              const std::string& reason);

  // Every known site, by name.
  std::vector<v1::SiteInfo> List() const;
  // Whether `site` ever registered or was revoked.
  bool Knows(const std::string& site) const { return known_.count(site) > 0; }
  // The revoked sites, by name, as revocations.
  std::vector<RevocationRecord> Revocations() const;

  // SiteRoster:
  std::vector<std::string> ConnectedSites() const override;
  bool Send(const std::string& site, const v1::CoordinatorMessage& message) override;
  int64_t TrainExamples(const std::string& site) const override;

 private:
  struct Session {
    uint64_t id = 0;
    std::shared_ptr<SiteChannel> channel;
    SiteRecord record;
  };

  void Audit(const std::string& actor, audit::Action action, const nlohmann::json& detail);

  Storage* storage_;
  const Clock* clock_;
  AuditLog* audit_;
  uint64_t next_session_ = 1;
  std::map<std::string, Session> sessions_;
  std::map<std::string, SiteRecord> known_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SITE_REGISTRY_H_
