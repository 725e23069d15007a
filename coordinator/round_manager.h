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
// Driven entirely by events (site changes, uploads, reports, clock ticks), so
// tests run it without sockets. Not thread-safe: the owning Federation holds
// its lock around every call.
#ifndef FEDMI_COORDINATOR_ROUND_MANAGER_H_
#define FEDMI_COORDINATOR_ROUND_MANAGER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/tensor_bundle.h"
#include "coordinator/aggregator.h"
#include "coordinator/model_store.h"
#include "coordinator/storage.h"
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
};

enum class RunPhase { kWaitingForSites, kInitializing, kTraining, kEvaluating, kFinished };
const char* RunPhaseName(RunPhase phase);

// A complete update, spooled to a local bundle file and checked against its
// header (SHA-256, byte count) by the transport before it reaches the core.
struct ReceivedUpdate {
  v1::UpdateMetadata metadata;
  std::string path;    // bundle file; the round manager deletes or adopts it
  std::string sha256;  // raw 32 bytes
  uint64_t bytes = 0;
};

class RoundManager {
 public:
  struct Deps {
    Storage* storage;
    ModelStore* models;
    const Clock* clock;
    SiteRoster* roster;
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
  // Checks that `site` may upload `metadata` now and returns the tensors the
  // update must have (empty for round 0, whose layout the site defines).
  absl::StatusOr<std::vector<TensorSpec>> ExpectedUpdate(const std::string& site,
                                                         const v1::UpdateMetadata& metadata);
  absl::Status OnUpdate(const std::string& site, ReceivedUpdate update);
  absl::Status OnEvalReport(const std::string& site, const v1::EvalReport& report);
  void OnSiteGaveUp(const std::string& site, const std::string& reason, bool refused);
  // A site's own refusal or failure of the task for `round`. Ignored unless
  // it is about the task the site holds now: a late report about an earlier
  // task must not drop the site from the current one.
  void OnSiteReport(const std::string& site, int32_t round, const std::string& reason,
                    bool refused);
  void OnTick();
  absl::Status Abort(const std::string& reason);

  // Live part of the status (phase, current round's per-site states); the
  // caller merges it with what Storage holds.
  void FillLiveStatus(v1::RunStatus* status) const;

 private:
  enum class SiteState { kAssigned, kUploaded, kEvaluated, kDropped };
  struct SiteSlot {
    SiteState state = SiteState::kAssigned;
    ParticipationRecord record;
  };

  RoundManager(RunRecord run, Deps deps);
  absl::Status Resume();

  void StartInitialization();
  void StartRound();
  void StartEvaluation();
  void MaybeFinishTraining();
  void MaybeFinishEvaluation();
  absl::Status FinishTraining();
  absl::Status AdoptInitialModel(const std::string& site, ReceivedUpdate update);
  void Fail(const std::string& reason);
  void Finish(const std::string& state, const std::string& error);
  std::vector<std::string> SelectSites();
  int CountInState(SiteState state) const;
  absl::StatusOr<std::vector<TensorSpec>> LoadModelSpecs(const std::string& sha256_hex);

  RunRecord run_;
  Deps deps_;
  RunPhase phase_ = RunPhase::kWaitingForSites;
  int32_t round_ = 0;                  // round being initialised/trained/evaluated
  std::string global_model_sha256_;    // hex, of round_ - 1 while training
  std::vector<TensorSpec> model_specs_;
  std::string init_site_;
  bool evaluation_pending_ = false;    // resumed after a commit, before evaluation
  std::map<std::string, SiteSlot> slots_;  // sites of the current round
  std::unique_ptr<Aggregator> aggregator_;
  absl::Time phase_deadline_ = absl::InfiniteFuture();
  double round_started_at_ = 0;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_ROUND_MANAGER_H_
