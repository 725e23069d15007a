// Federation: the coordinator's transport-free core and its facade. It owns
// the site registry (SiteRegistry: who is known, connected, revoked) and one
// RoundManager per unfinished run, opens upload sessions (UploadSession),
// and answers the admin queries (assembled by run_status.h). The gRPC
// adapters (grpc_*_service.cc) translate to and from it; tests drive it
// directly.
//
// Identity arrives as a Caller from the adapter's authenticator (the peer
// certificate), never from a request field.
//
// Thread-safe: one mutex serialises every state change. Sending to a site
// only queues on its SiteChannel, so no call blocks on the network.
#ifndef FEDMI_COORDINATOR_FEDERATION_H_
#define FEDMI_COORDINATOR_FEDERATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "common/crypto/revocation_list.h"
#include "coordinator/artifact_upload.h"
#include "coordinator/caller.h"
#include "coordinator/model_store.h"
#include "coordinator/round_manager.h"
#include "coordinator/site_registry.h"
#include "coordinator/storage.h"
#include "coordinator/upload_session.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

struct FederationOptions {
  std::string spool_dir;                          // partial uploads; same filesystem as the models
  uint64_t max_update_bytes = uint64_t{1} << 34;  // 16 GiB
  // The project CA (PEM). Secure aggregation verifies sites' signed key
  // advertisements against it, so it is refused when this is empty (--insecure).
  std::string ca_pem;
  // The coordinator's own TLS key and certificate (PEM): they sign each
  // secure round's admission, which sites verify against the CA.
  std::string identity_key_pem;
  std::string identity_cert_pem;
  // The project's CRL (`fedmi provision crl`), verified against the CA by
  // whoever read it: every caller whose certificate serial it lists is
  // refused. Empty by default.
  RevocationList crl;
  // Where security-relevant events are recorded (not owned); null: nowhere.
  AuditLog* audit = nullptr;
  // The file system of the spool directory (not owned).
  Env* env = Env::Default();
  // The crash points of process tests (not owned); production: none.
  FaultHook* faults = &NoFaults();
};

class Federation : public UploadReceiver {
 public:
  Federation(Storage* storage, ModelStore* models, const Clock* clock, FederationOptions options);
  ~Federation() override;

  // Loads every unfinished run from storage and resumes it; removes stale
  // spool files and unreferenced model files.
  absl::Status Start();

  // --- Sites ----------------------------------------------------------------
  // Opens a session; a previous session of the same site is closed. Returns
  // the session id to pass to SiteDisconnected.
  absl::StatusOr<uint64_t> SiteConnected(const Caller& caller, const v1::Hello& hello,
                                         std::shared_ptr<SiteChannel> channel);
  void SiteDisconnected(const std::string& site, uint64_t session);
  absl::Status OnSiteMessage(const Caller& caller, const v1::SiteMessage& message);

  // Path of the stored global model `ref` names, for DownloadModel/Export.
  // round < 0 means the latest committed round. Also returns its SHA-256.
  // With ref.artifact_sha256: that artifact, if the run's spec names it
  // (PermissionDenied otherwise: a site reads only its runs' artifacts).
  absl::StatusOr<std::string> ModelPath(const v1::ModelRef& ref, std::string* sha256 = nullptr,
                                        int32_t* round = nullptr);

  // Starts an upload of the update `metadata` describes; the transport feeds
  // it the rest of the stream. A refusal (not this site's turn, wrong run or
  // round, revoked) is recorded and comes back as a Status.
  absl::StatusOr<std::unique_ptr<UploadSession>> OpenUpload(const Caller& caller,
                                                            const v1::UpdateMetadata& metadata);
  // The two halves of an upload that OpenUpload and UploadSession use; tests
  // of round logic call them with a bundle file they spooled themselves.
  // BeginUpload checks an upload's metadata and returns what the update must
  // be (RoundManager::ExpectedUpdate).
  absl::StatusOr<ExpectedUpload> BeginUpload(const Caller& caller,
                                             const v1::UpdateMetadata& metadata);
  // Hands a complete, checksum-verified update to its run. Returns the
  // receipt, signed when the audit log has a key, naming its audit entry.
  absl::StatusOr<v1::UploadReceipt> CompleteUpload(const Caller& caller,
                                                   ReceivedUpdate update) override;
  // Records that `caller` exported the model of `run_id` round `round`.
  void RecordExport(const Caller& caller, int64_t run_id, int32_t round,
                    const std::string& model_sha256_hex);
  // Records a refused update (bad stream, layout, values, not expected now)
  // in the audit log and the process log.
  void RecordUploadRefused(const Caller& caller, const v1::UpdateMetadata& metadata,
                           const absl::Status& status) override;
  // Records a refused call (authentication or authorization) in the audit log.
  void RecordDenied(const std::string& actor, const std::string& call, const std::string& reason);
  const FederationOptions& options() const { return options_; }

  // --- Admin ----------------------------------------------------------------
  // Refuses, before anything is stored, a spec that names an artifact this
  // coordinator does not hold (FailedPrecondition: upload it first) or one
  // of the wrong kind (InvalidArgument: a model file is one uint8 tensor,
  // initial weights are float32 tensors).
  absl::StatusOr<int64_t> StartRun(const Caller& caller, v1::RunSpec spec);
  // An admin's upload of a bundle a run spec may then name by its SHA-256
  // (coordinator/artifact_upload.h). PermissionDenied for other roles.
  absl::StatusOr<std::unique_ptr<ArtifactUpload>> OpenArtifactUpload(const Caller& caller);
  absl::StatusOr<v1::RunStatus> GetRun(int64_t run_id);
  absl::StatusOr<std::vector<v1::RunStatus>> ListRuns();
  absl::Status AbortRun(const Caller& caller, int64_t run_id, const std::string& reason);
  absl::StatusOr<std::vector<v1::SiteInfo>> ListSites();
  // Revokes a site at once and for good: its open stream is closed, it drops
  // out of running rounds, and every later call from it is refused, across
  // restarts. Records who revoked it, when and why. Revoke(caller, site,
  // kSite, reason).
  absl::Status RevokeSite(const Caller& caller, const std::string& site, const std::string& reason);

  // --- Revocation of any role (federation_revocation.cc) ---------------------
  // Revokes the party `name` at once and for good (admin only), across
  // restarts: every later call with a certificate whose CN is `name` is
  // refused (CheckNotRevoked), a site's control stream is closed, and an
  // admin's or auditor's open WatchRun ends with PermissionDenied. `role`
  // is what the party holds; nullopt means a site this coordinator knows.
  // Sites are revoked as before (sites table, site.revoked); admins and
  // auditors are stored as a RevocationRecord (party.revoked). Returns the
  // revocation. PermissionDenied for a caller that is not an admin;
  // FailedPrecondition for an admin revoking itself (another admin must, so
  // that a slip cannot lock out a project's last admin) or a party already
  // revoked; InvalidArgument for a bad name, the coordinator role, a
  // registered site named as another role, or no role for a name that is no
  // registered site.
  absl::StatusOr<RevocationRecord> Revoke(const Caller& caller, const std::string& name,
                                          std::optional<PartyRole> role, const std::string& reason);
  // Every revocation, sites included, by name.
  absl::StatusOr<std::vector<RevocationRecord>> ListRevocations();
  // Every authenticated call passes here first: PermissionDenied when the
  // caller's certificate serial is on the CRL, or naming who revoked the
  // caller's name and why.
  absl::Status CheckNotRevoked(const Caller& caller);

  // Streams the status of `run_id` to `write` at first and whenever it
  // changes, until the run ends or `write` returns false (OK), `cancelled`
  // returns true (Cancelled), or the caller is revoked (PermissionDenied, as
  // CheckNotRevoked, at once: revocation wakes every watcher). NotFound for
  // an unknown run. Blocks; the WatchRun RPC runs it on its own thread.
  absl::Status WatchRun(const Caller& caller, int64_t run_id,
                        const std::function<bool(const v1::RunStatus&)>& write,
                        const std::function<bool()>& cancelled);
  // Every site RPC passes here first: the caller must hold the site role and
  // must not be revoked.
  absl::Status AuthorizeSite(const Caller& caller);

  // Blocks until something changed after `*version` or `timeout` passed;
  // updates `*version`. For WatchRun.
  void WaitForChange(uint64_t* version, absl::Duration timeout);
  uint64_t version();

  // Fires deadlines; called periodically by the server.
  void Tick();

  // The update path's time per phase since the coordinator started; the
  // gRPC adapters add their receive and model-send time here.
  PhaseTimes& phase_times() { return phase_times_; }

 private:
  RoundManager::Deps Deps();
  absl::Status CheckArtifacts(const v1::RunSpec& spec) const;
  absl::StatusOr<uint64_t> OpenSession(const Caller& caller, const v1::Hello& hello,
                                       std::shared_ptr<SiteChannel> channel);
  // Records an event in the audit log, if there is one (failures are logged).
  void Audit(const std::string& actor, audit::Action action, int64_t run_id,
             const nlohmann::json& detail);
  absl::StatusOr<RoundManager*> ActiveRun(int64_t run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckNameNotRevoked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RevocationRecord> RevokeParty(const Caller& caller, const std::string& name,
                                               PartyRole role, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReapFinishedRuns() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++version_; }

  Storage* storage_;
  ModelStore* models_;
  const Clock* clock_;
  FederationOptions options_;
  PhaseTimes phase_times_;

  mutable absl::Mutex mu_;
  // Declared before runs_: the round managers reach sites through it.
  SiteRegistry sites_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::unique_ptr<RoundManager>> runs_ ABSL_GUARDED_BY(mu_);
  // Revoked admins and auditors, by name (revoked sites: in sites_).
  std::map<std::string, RevocationRecord> revoked_parties_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_FEDERATION_H_
