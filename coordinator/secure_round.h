// SecureRound: the secure-aggregation part of one training round
// (docs/secure-aggregation.md), transport-free. It owns the round's
// SecAggSession (who takes part, share relay), its SecAggAggregator (the
// masked sum; no individual update is ever unmasked), the set of survivors
// asked to reveal shares, and the deadline of the current step:
//
//   advertising keys -> sharing secrets -> uploading masked updates
//     -> checking survivors -> unmasking
//
// Each SecureRound is one attempt at its round, admitted with a fresh nonce
// and signed with the coordinator's TLS identity (secagg_transcript.h).
//
// The RoundManager keeps the round's sites and their slots, and drives a
// SecureRound through this API: it forwards each protocol message, asks
// which sites still owe something in the current step, and closes a step
// once none does; the Close* calls return what must be sent to the sites.
//
// Not thread-safe: the RoundManager serialises calls. Errors name the round
// and the culprit; a PermissionDenied from OnAdvertisement means a forged or
// misattributed advertisement, which must fail the round.
#ifndef FEDMI_COORDINATOR_SECURE_ROUND_H_
#define FEDMI_COORDINATOR_SECURE_ROUND_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"
#include "coordinator/secagg_aggregator.h"
#include "coordinator/secagg_session.h"
#include "fedmi/v1/admin.pb.h"
#include "fedmi/v1/secagg.pb.h"

namespace fedmi {

class SecureRound {
 public:
  enum class Step { kAdvertising, kSharing, kUploading, kCheckingSurvivors, kUnmasking };
  static const char* StepName(Step step);

  // What a secure round starts from.
  struct Setup {
    int64_t run_id = 0;
    int32_t round = 0;
    int32_t attempt = 1;             // 1 + the round's retries so far
    v1::SecAggSettings settings;     // from the run spec; 0 fields take defaults
    std::vector<std::string> sites;  // selected, sorted
    // Examples each site declared in its hello; the largest is the round's
    // max_examples unless the settings fix it.
    std::map<std::string, int64_t> train_examples;
    // The project CA; empty without TLS, and then the round cannot start.
    std::string ca_pem;
    // The coordinator's TLS key and certificate: they sign the admission.
    std::string identity_key_pem;
    std::string identity_cert_pem;
    std::vector<TensorSpec> model_specs;  // the float32 global model's
    std::string global_model_path;        // the model the sites train from
    // Site-level DP-FedAvg: every site weighs 1 and the sum becomes the
    // change as SiteDpSum says; unset: example-weighted FedAvg.
    std::optional<SiteDpSum> site_dp;
    const Clock* clock = nullptr;
    absl::Duration step_timeout = absl::InfiniteDuration();
  };

  // FailedPrecondition without a CA or identity; the session's or
  // aggregator's error for unusable parameters or a global model that cannot
  // be read.
  static absl::StatusOr<std::unique_ptr<SecureRound>> Begin(Setup setup);

  // Sent to every selected site with its TrainTask.
  const v1::SecAggParams& params() const { return admission_.params(); }
  const v1::RoundAdmission& admission() const { return admission_; }
  Step step() const { return step_; }
  // When the current step gives up on the sites that still owe something.
  absl::Time deadline() const { return deadline_; }
  // The tensors of a masked update: the model's, as int32 words.
  const std::vector<TensorSpec>& masked_specs() const { return masked_specs_; }

  // Sites of `assigned` (those still in the round) that owe the current step
  // something; while unmasking, the survivors whose shares are outstanding.
  std::vector<std::string> Pending(const std::vector<std::string>& assigned) const;
  bool advertised(const std::string& site) const { return advertised_.count(site) > 0; }

  // --- Step 1: key advertisements ---------------------------------------
  // The caller checks that the round is in this step and `site` in it.
  absl::Status OnAdvertisement(const std::string& site, const v1::KeyAdvertisement& ad,
                               const std::string& certificate_pem);
  // Ends step 1: the peer keys, for the sites that advertised().
  absl::StatusOr<v1::PeerKeys> ClosePeerKeys();
  const std::vector<std::string>& advertised_sites() const { return session_->advertised(); }

  // --- Step 2: secret shares --------------------------------------------
  absl::Status OnShares(const std::string& site, const v1::ShareBundle& bundle);
  // Ends step 2: per site, the shares relayed to it. A site that did not
  // share (MayUpload false) leaves the round.
  absl::StatusOr<std::map<std::string, v1::ShareBundle>> CloseSharing();
  // An empty relay for a site that received no shares.
  v1::ShareBundle EmptyRelay() const;
  bool MayUpload(const std::string& site) const { return session_->MayUpload(site); }

  // --- Step 3: masked updates -------------------------------------------
  // Whether a masked update from `site` may be uploaded now.
  absl::Status ExpectMaskedUpdate(const std::string& site) const;
  // Folds the update, already checked against masked_specs(), into the sum
  // with the weight the site itself computed from `examples`. After an error
  // the sum cannot be trusted: the round must fail.
  absl::Status AcceptMaskedUpdate(const std::string& site, int64_t examples,
                                  BundleFileReader& update);
  // Ends step 3: the survivor set to send to every site of `uploaded`; the
  // caller then names those it reached in AwaitSignatures().
  absl::StatusOr<v1::SurvivorSet> CloseUploads(const std::set<std::string>& uploaded);
  void AwaitSignatures(std::set<std::string> asked) { awaiting_ = std::move(asked); }

  // --- Step 4: the consistency check --------------------------------------
  bool awaiting_signature(const std::string& site) const {
    return step_ == Step::kCheckingSurvivors && awaiting_.count(site) > 0;
  }
  // A bad signature is not counted (PermissionDenied); the others may still
  // be enough.
  absl::Status OnSurvivorSignature(const std::string& site, const v1::SurvivorSignature& signature);
  bool signatures_complete() const {
    return step_ == Step::kCheckingSurvivors && awaiting_.empty();
  }
  // Ends step 4: the unmask request, for the signers only (signers()); the
  // caller names those it reached in AwaitUnmasking().
  absl::StatusOr<v1::UnmaskRequest> CloseSignatures();
  const std::set<std::string>& signers() const { return session_->signers(); }
  void AwaitUnmasking(std::set<std::string> asked);

  // --- Step 5: unmasking ------------------------------------------------
  // Whether `site` was asked for its shares and has not answered.
  bool awaiting_unmask(const std::string& site) const {
    return step_ == Step::kUnmasking && awaiting_.count(site) > 0;
  }
  // For a site awaiting_unmask(). An error means its shares are ignored; the
  // others' may still be enough.
  absl::Status OnUnmaskResponse(const std::string& site, const v1::UnmaskResponse& response);
  // A survivor that left: true if its signature or shares were still awaited.
  bool StopAwaiting(const std::string& site) { return awaiting_.erase(site) > 0; }
  // The deadline passed: go on with the signatures or shares that did arrive.
  void StopAwaitingAll() { awaiting_.clear(); }
  bool unmasking_complete() const { return step_ == Step::kUnmasking && awaiting_.empty(); }
  // Unmasks the sum and writes the new global model into `store`; returns
  // its SHA-256 (hex).
  absl::StatusOr<std::string> Finish(const ModelStore& store);

 private:
  explicit SecureRound(Setup setup) : setup_(std::move(setup)) {}
  void EnterStep(Step step);

  Setup setup_;
  v1::RoundAdmission admission_;
  Step step_ = Step::kAdvertising;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::unique_ptr<SecAggSession> session_;
  std::unique_ptr<SecAggAggregator> aggregator_;
  std::vector<TensorSpec> masked_specs_;
  std::set<std::string> advertised_;
  std::set<std::string> shared_;
  // Survivors asked to sign (step 4), then signers asked to reveal (step 5).
  std::set<std::string> awaiting_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SECURE_ROUND_H_
