// RoundManager: the state machine of one federated run.
//
//   WaitingForSites -> Initializing -> [Training -> (aggregate + commit)
//     -> Evaluating]* -> Done | Failed | Aborted
//
// Round 0 is the initial model: one site builds it from the run spec and its
// seed, so the coordinator never executes model code. Each later round
// selects sites, pushes a TrainTask down their control streams, folds each
// complete update into the aggregator as it arrives, commits the new global
// model in one storage transaction, then asks the same sites to evaluate it.
//
// With secure aggregation (docs/secure-aggregation.md) the training phase
// drives a SecureRound (coordinator/secure_round.h) through the protocol's
// steps before the model is committed; no individual update is ever
// unmasked.
//
// Files: round_manager.cc holds the phases, round_manager_updates.cc the
// intake of updates, round_manager_secagg.cc the driving of a SecureRound,
// round_manager_status.cc the live status.
//
// Driven entirely by events (site changes, uploads, reports, clock ticks), so
// tests run it without sockets. Not thread-safe: the owning Federation holds
// its lock around every call.
#ifndef FEDMI_COORDINATOR_ROUND_MANAGER_H_
#define FEDMI_COORDINATOR_ROUND_MANAGER_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "common/privacy/gaussian_noise.h"
#include "common/privacy/rdp_accountant.h"
#include "common/tensor/tensor_bundle.h"
#include "coordinator/aggregator.h"
#include "coordinator/audit_log.h"
#include "coordinator/model_store.h"
#include "coordinator/phase_times.h"
#include "coordinator/secure_round.h"
#include "coordinator/server_optimizer.h"
#include "coordinator/site_dp_aggregator.h"
#include "coordinator/storage.h"
#include "coordinator/update_check.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// How the round manager reaches sites; implemented by Federation.
class SiteRoster {
 public:
  virtual ~SiteRoster() = default;
  // Names of the sites with an open control stream, sorted.
  virtual std::vector<std::string> ConnectedSites() const = 0;
  // Queues `message` on the site's control stream; false if it is not connected.
  virtual bool Send(const std::string& site, const v1::CoordinatorMessage& message) = 0;
  // Training examples the site declared in its hello; 0 if unknown.
  virtual int64_t TrainExamples(const std::string& site) const = 0;
};

enum class RunPhase { kWaitingForSites, kInitializing, kTraining, kEvaluating, kFinished };
const char* RunPhaseName(RunPhase phase);

// What an upload must be, as ExpectedUpdate decides it before the first body
// byte (UploadSession).
struct ExpectedUpload {
  // The tensors the update must have; empty for round 0, whose layout the
  // site defines.
  std::vector<TensorSpec> specs;
  // A plaintext training update: the round's global model (a ModelStore
  // path), against which the upload scans the update's values as they arrive
  // (UpdateValueScan). Empty when nothing is scanned: the initial model, and
  // masked words of secure aggregation.
  std::string global_model_path;
  std::string global_model_sha256;  // its hex SHA-256
  // The initial model is adopted into the model store, so its spool file must
  // be durable; an update is folded and deleted, and its spool file is
  // scratch (Durability::kScratch).
  bool adopted = false;
};

// A complete update, spooled to a local bundle file and checked against its
// header (SHA-256, byte count) by the transport before it reaches the core.
struct ReceivedUpdate {
  v1::UpdateMetadata metadata;
  std::string path;    // bundle file; the round manager deletes or adopts it
  std::string sha256;  // raw 32 bytes
  uint64_t bytes = 0;
  // What the upload's scan found (ExpectedUpload::global_model_path); when
  // absent, or measured against another global model than the round's, the
  // round manager scans the spooled file itself.
  std::optional<UpdateValues> values;
};

class RoundManager {
 public:
  struct Deps {
    Storage* storage;
    ModelStore* models;
    const Clock* clock;
    SiteRoster* roster;
    // The project CA that signs site certificates; key advertisements are
    // verified against it. Empty without TLS: secure aggregation then fails.
    std::string ca_pem;
    // Where round events are recorded (docs/audit.md); null: not recorded.
    AuditLog* audit = nullptr;
    // Told when a round reaches each coordinator-* crash point.
    FaultHook* faults = &NoFaults();
    // Removes spooled updates once folded or refused.
    Env* env = Env::Default();
    // The coordinator's TLS key and certificate, which sign each secure
    // round's admission. Empty without TLS.
    std::string identity_key_pem = "";
    std::string identity_cert_pem = "";
    // Central noise of site-level DP; null: the kernel's CSPRNG. Tests
    // give a seeded one.
    privacy::NoiseSource* dp_noise = nullptr;
    // Where the fold and the round commit add their time; null: not timed.
    PhaseTimes* phases = nullptr;
  };

  // A new run (as stored by Storage::CreateRun) or one resumed after a
  // restart: it continues after its last committed round.
  static absl::StatusOr<std::unique_ptr<RoundManager>> Load(int64_t run_id, Deps deps);

  int64_t run_id() const { return run_.id; }
  const v1::RunSpec& spec() const { return run_.spec; }
  RunPhase phase() const { return phase_; }
  int32_t current_round() const { return round_; }
  bool finished() const { return phase_ == RunPhase::kFinished; }

  // --- Events -------------------------------------------------------------
  void OnSitesChanged();
  void OnSiteDisconnected(const std::string& site, const std::string& reason = "disconnected");
  // Checks that `site` may upload `metadata` now and returns what the update
  // must be.
  absl::StatusOr<ExpectedUpload> ExpectedUpdate(const std::string& site,
                                                const v1::UpdateMetadata& metadata);
  // `received`, when given, gets the update.received audit entry of an
  // accepted update (for the site's receipt).
  absl::Status OnUpdate(const std::string& site, ReceivedUpdate update,
                        v1::AuditEntry* received = nullptr);
  absl::Status OnEvalReport(const std::string& site, const v1::EvalReport& report);
  void OnSiteGaveUp(const std::string& site, const std::string& reason, bool refused);
  // A site's own refusal or failure of the task for `round`. Ignored unless
  // it is about the task the site holds now: a late report about an earlier
  // task must not drop the site from the current one.
  void OnSiteReport(const std::string& site, int32_t round, const std::string& reason,
                    bool refused);
  void OnTick();

  // --- Secure aggregation steps (only in a securely aggregated round) -------
  // `certificate_pem` is the site's TLS peer certificate. A forged or
  // misattributed advertisement fails the round, naming the site.
  absl::Status OnKeyAdvertisement(const std::string& site, const v1::KeyAdvertisement& ad,
                                  const std::string& certificate_pem);
  absl::Status OnShares(const std::string& site, const v1::ShareBundle& bundle);
  absl::Status OnSurvivorSignature(const std::string& site, const v1::SurvivorSignature& signature);
  absl::Status OnUnmaskResponse(const std::string& site, const v1::UnmaskResponse& response);
  // A site caught another party breaking the protocol (a forged
  // advertisement, a share failing authentication): the round fails with
  // `reason`, which names the culprit.
  void OnProtocolViolation(const std::string& site, int32_t round, const std::string& reason);
  absl::Status Abort(const std::string& reason);

  // Live part of the status (phase, current round's per-site states); the
  // caller merges it with what Storage holds.
  void FillLiveStatus(v1::RunStatus* status) const;

 private:
  enum class SlotState { kAssigned, kUploaded, kEvaluated, kDropped };
  struct SiteSlot {
    SlotState state = SlotState::kAssigned;
    ParticipationRecord record;
    bool dp_within_clip = false;  // adaptive clipping: the site's report with its update
  };
  // One step of adaptive clipping, fixed when a round commits.
  struct ClipStep {
    double clip = 0;             // this round's S
    double noised_fraction = 0;  // share of sites within S, from the noised centred count
    double next_clip = 0;        // the next round's S
  };

  RoundManager(RunRecord run, Deps deps);
  absl::Status Resume();

  // --- Phases (round_manager.cc) --------------------------------------------
  void StartInitialization();
  void StartRound();
  // Sites a training round needs before it opens.
  int RoundQuorum() const;
  void StartEvaluation();
  void MaybeFinishTraining();
  void MaybeFinishEvaluation();
  absl::Status FinishTraining();
  // Steps the server optimizer on the round's whole aggregate and commits the
  // round with the new model and state.
  absl::Status CommitTrainedRound(const std::string& aggregate_sha256);
  // Ends a round that cannot complete: it is started afresh while
  // spec.max_round_retries allows, otherwise the run fails with `reason`.
  void FailRound(const std::string& reason);
  // The quorum check shared by both kinds of round: an error naming the
  // dropped sites when fewer than min_sites can still upload.
  absl::Status CheckQuorum() const;
  void Fail(const std::string& reason);
  void Finish(RunState state, const std::string& error);
  // Differential privacy (round_manager_privacy.cc). Ends the run "privacy
  // budget exhausted", keeping its last model, when round_ would take
  // epsilon past the target; returns whether it did.
  bool FinishIfBudgetExhausted();
  // Site-level DP with distributed noise: a round whose sum holds fewer
  // noise shares than planned (sites dropped out) costs more; when
  // committing it would pass the target, the run ends "privacy budget
  // exhausted" instead and this returns true.
  bool FinishIfRoundOverBudget();
  // Epsilon after the committed rounds and this one with `contributors`;
  // nullopt when it cannot be accounted, and the run has failed.
  std::optional<privacy::PrivacySpent> EpsilonWithThisRound(int contributors);
  // Sites whose updates reached the sums of rounds 1..through_round (index
  // r - 1), from storage, for the accountant.
  absl::StatusOr<std::vector<int>> CommittedContributors(int32_t through_round);
  // The next model's aggregation for a site-level DP round.
  SiteDpSum SiteDpSumOfRun();
  // Site-level DP: this round's clip S (adaptive clipping moves it).
  double RoundClipNorm() const;
  // Adaptive clipping: draws the count's noise over the uploaded slots and
  // returns the step; nullopt without adaptive clipping.
  std::optional<ClipStep> NextClipStep();
  privacy::NoiseSource& DpNoise();
  // Records the privacy.spent entry of the round just committed.
  void AuditPrivacySpent(const std::optional<ClipStep>& clip_step);
  int CountInState(SlotState state) const;
  std::vector<std::string> SitesInState(SlotState state) const;
  absl::StatusOr<std::vector<TensorSpec>> LoadModelSpecs(const std::string& sha256_hex);

  // --- Updates (round_manager_updates.cc) -----------------------------------
  absl::Status AcceptUpdate(const std::string& site, ReceivedUpdate update,
                            v1::AuditEntry* received);
  absl::Status AdoptInitialModel(const std::string& site, ReceivedUpdate update,
                                 v1::AuditEntry* received);
  // Finite values and the run's norm bound (CheckUpdateValues) against the
  // global model of this round: from the upload's scan, or scanning the
  // spooled file when the update came without one.
  absl::Status CheckValues(const std::string& site, const ReceivedUpdate& update);
  // Records an update folded into the round: in the audit log, then in the
  // site's slot. An error (not on record) has failed the round.
  absl::Status RecordFoldedUpdate(const std::string& site, const ReceivedUpdate& update,
                                  v1::AuditEntry* received, absl::string_view kind);
  // Deletes a spooled update that was folded in or refused.
  void RemoveSpooled(const ReceivedUpdate& update);
  // Records an event of this run in the audit log (a failure is logged).
  void Audit(audit::Action action, int32_t round, const nlohmann::json& detail);
  // The log's signed head for a task, so the site keeps evidence of the log
  // as it stood; nullopt without an audit key.
  std::optional<v1::SignedAuditHead> AuditHead();
  // Records an accepted update; an error means it is not in the log, and the
  // caller must not acknowledge it.
  absl::Status AuditUpdate(const std::string& site, const ReceivedUpdate& update,
                           v1::AuditEntry* received);

  // --- Frozen tensors (round_manager_transfer.cc) ----------------------------
  // Fixes what round_ trains (RunSpec.transfer): round_specs_, and
  // round_global_sha256_, the global model restricted to those tensors
  // (written to the model store when some are frozen). Every update,
  // aggregator and value check of the round sees only these tensors.
  absl::Status PrepareRoundTensors();
  // The global model of round_: the aggregate `trained_sha256` (of
  // round_specs_) with the frozen tensors of the previous global model put
  // back, in the global model's order.
  absl::StatusOr<std::string> CompleteRoundModel(const std::string& trained_sha256);

  // --- Server optimizer (round_manager_optimizer.cc) ------------------------
  // Moves the global model by the round's aggregate `aggregate_sha256` (a
  // whole model) with the run's server optimizer, from the state of the last
  // committed round; fedavg returns the aggregate itself and no state.
  absl::StatusOr<ServerStep> StepServerOptimizer(const std::string& aggregate_sha256);

  // --- Secure aggregation (round_manager_secagg.cc) -------------------------
  // The signed admission of this attempt, sent with every TrainTask.
  absl::StatusOr<v1::RoundAdmission> BeginSecureRound(const std::vector<std::string>& sites);
  // Moves to the next step once no site is pending in this one.
  void AdvanceSecureRound();
  absl::Status AcceptMaskedUpdate(const std::string& site, ReceivedUpdate update,
                                  v1::AuditEntry* received);

  RunRecord run_;
  Deps deps_;
  RunPhase phase_ = RunPhase::kWaitingForSites;
  int32_t round_ = 0;                // round being initialised/trained/evaluated
  std::string global_model_sha256_;  // hex, of round_ - 1 while training
  std::vector<TensorSpec> model_specs_;
  // What round_ trains and its slice of the global model: model_specs_ and
  // global_model_sha256_ unless tensors are frozen (PrepareRoundTensors).
  std::vector<TensorSpec> round_specs_;
  std::string round_global_sha256_;
  std::string init_site_;
  bool evaluation_pending_ = false;        // resumed after a commit, before evaluation
  std::map<std::string, SiteSlot> slots_;  // sites of the current round
  std::unique_ptr<Aggregator> aggregator_;
  // aggregator_'s decisions about sites, from its Finish to the commit's
  // audit entry.
  SiteDecisions site_decisions_;
  absl::Time phase_deadline_ = absl::InfiniteFuture();
  double round_started_at_ = 0;
  int round_retries_used_ = 0;                          // of the current round
  std::unique_ptr<privacy::NoiseSource> own_dp_noise_;  // when deps_.dp_noise is null
  double dp_clip_norm_ = 0;  // adaptive clipping: this round's S; 0: the spec's
  // The server optimizer's state after the last committed round; empty
  // before the first step and for fedavg.
  std::string server_state_sha256_;

  // Set while a securely aggregated round is training.
  std::unique_ptr<SecureRound> secure_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_ROUND_MANAGER_H_
