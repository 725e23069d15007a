// SiteSecAgg: a site's side of secure aggregation, round after round, for
// SiteSession. A securely aggregated train task runs, around the usual
// download and training:
//   ShareSecrets: start a SecAggParticipant, advertise its keys, await the
//                 peers' keys (inbox), send the sealed shares
//   MaskUpdate:   await the shares relayed to this site (inbox), mask the
//                 update (the caller uploads it), then KeepForUnmasking
//   Reveal:       answer the coordinator's unmask request, once per round
// PeerKeys and relayed shares arrive while the train task that needs them is
// running, so they wait in inbox() rather than in the task queue.
//
// Errors are prefixed "secure aggregation: ". `violation` is set when the
// error is a peer's or the coordinator's breach of the protocol (a forged
// advertisement, a share that fails authentication), which the site reports
// as such. FaultPoint::kSiteBeforeMaskedUpload is reached once this site
// holds every relayed share and before it masks: a crash there is a dropout
// after sharing.
//
// Thread-safety: inbox() is thread-safe; everything else is called from the
// session's task thread only. The link, Env and FaultHook are not owned and
// must outlive this object. A participant's destructor wipes its secrets.
#ifndef FEDMI_CLIENT_SITE_SECAGG_H_
#define FEDMI_CLIENT_SITE_SECAGG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/coordinator_link.h"
#include "client/secagg_inbox.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "common/secagg/secagg_transcript.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

namespace secagg {
class SecAggParticipant;
}

// The files of a site's TLS identity. Secure aggregation signs the site's
// key advertisement with the TLS key, so that peers can check it against the
// certificate the coordinator saw; it cannot run without them.
struct SiteIdentityFiles {
  bool insecure = false;  // plaintext transport: there is no identity
  std::string key_file;
  std::string cert_file;
  std::string ca_file;
  // The project CRL (empty: none): peers' and the coordinator's certificates
  // it lists are refused. Read with the CA for every round, like the rest.
  std::string crl_file;
};

class SiteSecAgg {
 public:
  // Why a wait must end early (non-OK), asked again after every wake-up.
  using AbortCheck = absl::FunctionRef<absl::Status()>;

  SiteSecAgg(std::string site, SiteIdentityFiles identity, CoordinatorLink& link, Env& env,
             FaultHook& faults);
  ~SiteSecAgg();

  SecAggInbox& inbox() { return inbox_; }

  // Checks the coordinator's signed admission against the approved spec and
  // `floor`, then shares. FailedPrecondition without a TLS identity; a
  // "site policy: " PermissionDenied when the round falls below `floor`; a
  // violation for an admission that is forged, disagrees with the task or
  // the spec, or reuses an earlier attempt's nonce; the inbox's error
  // (timeout, or `abort`'s status) when the peers' keys do not come.
  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> ShareSecrets(
      const v1::TrainTask& task, const secagg::SecAggFloor& floor, AbortCheck abort,
      bool* violation);

  // The masked update to upload in place of `update`.
  absl::StatusOr<TensorBundle> MaskUpdate(const v1::TrainTask& task,
                                          secagg::SecAggParticipant& participant,
                                          const TensorBundle& global, const TensorBundle& update,
                                          int64_t examples, AbortCheck abort, bool* violation);

  // Keeps a participant whose masked update was uploaded until Reveal.
  void KeepForUnmasking(int64_t run_id, int32_t round,
                        std::unique_ptr<secagg::SecAggParticipant> participant);

  // The consistency check: this site's signature over the survivor set.
  // FailedPrecondition when this site holds nothing for the round.
  absl::StatusOr<v1::SurvivorSignature> SignSurvivors(const v1::SurvivorSet& set);

  // The shares to reveal. FailedPrecondition when this site holds nothing
  // for the round (it may have restarted since its upload); the participant
  // is wiped whatever the outcome.
  absl::StatusOr<v1::UnmaskResponse> Reveal(const v1::UnmaskRequest& request);

  // Wipes what is kept for rounds of `run_id` before `round` (all of the
  // run's: INT32_MAX), and for every round of the runs in `runs`.
  void DropBefore(int64_t run_id, int32_t round);
  // Wipes what is kept for one round (an abandoned attempt).
  void DropRound(int64_t run_id, int32_t round);
  void DropRuns(const std::set<int64_t>& runs);

 private:
  using RoundKey = std::pair<int64_t, int32_t>;  // run, round

  // PermissionDenied when a round with distributed DP noise has fewer
  // survivors than its shares are sized for.
  absl::Status CheckSurvivorCount(int64_t run_id, int32_t round, int survivors) const;

  absl::StatusOr<v1::CoordinatorMessage> Await(SecAggInbox::Kind kind, const v1::TrainTask& task,
                                               AbortCheck abort);

  const std::string site_;
  const SiteIdentityFiles identity_;
  CoordinatorLink& link_;
  Env& env_;
  FaultHook& faults_;
  SecAggInbox inbox_;
  std::map<RoundKey, std::unique_ptr<secagg::SecAggParticipant>> participants_;
  // Distributed site-level DP noise: the survivors a round needs for its
  // sum to carry every share the run's epsilon counts on.
  std::map<RoundKey, int> required_survivors_;
  // Every attempt nonce this site accepted: a coordinator that reuses one
  // would make old advertisements and shares valid again.
  std::set<std::string> seen_nonces_;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_SECAGG_H_
