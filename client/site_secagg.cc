#include "client/site_secagg.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "client/site_policy.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/revocation_list.h"
#include "common/runspec/dp_spec.h"
#include "common/secagg/secagg_participant.h"

namespace fedmi {
namespace {

absl::Status SecAggError(const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("secure aggregation: ", status.message()));
}

std::string RoundName(int64_t run_id, int32_t round) {
  return absl::StrCat("run ", run_id, " round ", round);
}

std::string Where(int64_t run_id, int32_t round) {
  return absl::StrCat(RoundName(run_id, round), ": secure aggregation: ");
}

// The coordinator always sets a positive round timeout; 3600 s is its default.
absl::Duration SecAggTimeout(const v1::RunSpec& spec) {
  return absl::Seconds(spec.round_timeout_s() > 0 ? spec.round_timeout_s() : 3600);
}

}  // namespace

SiteSecAgg::SiteSecAgg(std::string site, SiteIdentityFiles identity, CoordinatorLink& link,
                       Env& env, FaultHook& faults)
    : site_(std::move(site)),
      identity_(std::move(identity)),
      link_(link),
      env_(env),
      faults_(faults) {}

SiteSecAgg::~SiteSecAgg() = default;

absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> SiteSecAgg::ShareSecrets(
    const v1::TrainTask& task, const secagg::SecAggFloor& floor, AbortCheck abort,
    bool* violation) {
  const int64_t run_id = task.run_id();
  const int32_t round = task.round();
  // A task left over from an earlier connection belongs to a round the
  // coordinator has already dropped this site from.
  RETURN_IF_ERROR(abort());
  if (identity_.insecure || identity_.key_file.empty() || identity_.cert_file.empty() ||
      identity_.ca_file.empty()) {
    return absl::FailedPreconditionError(
        "secure aggregation needs this site's certificate and key (mutual TLS); it cannot run "
        "with --insecure");
  }
  auto read = [this](const std::string& path) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> pem = env_.ReadFile(path);
    if (!pem.ok()) return SecAggError(pem.status());
    return pem;
  };
  ASSIGN_OR_RETURN(std::string key_pem, read(identity_.key_file));
  ASSIGN_OR_RETURN(std::string cert_pem, read(identity_.cert_file));
  ASSIGN_OR_RETURN(std::string ca_pem, read(identity_.ca_file));
  RevocationList revoked;
  if (!identity_.crl_file.empty()) {
    ASSIGN_OR_RETURN(std::string crl_pem, read(identity_.crl_file));
    absl::StatusOr<RevocationList> crl = RevocationList::FromPem(crl_pem, ca_pem);
    if (!crl.ok()) return SecAggError(crl.status());
    revoked = *std::move(crl);
  }
  const v1::RoundAdmission& admission = task.admission();
  if (!task.has_admission() ||
      admission.params().SerializeAsString() != task.secagg().SerializeAsString() ||
      admission.run_id() != run_id || admission.round() != round) {
    *violation = true;
    return SecAggError(absl::PermissionDeniedError(
        "the task's secure-aggregation parameters are not the ones the coordinator's "
        "admission signs"));
  }
  // The site's own floor: an honest coordinator may run a spec this site
  // does not accept, which is a refusal, not a violation.
  const v1::SecAggParams& params = admission.params();
  if (absl::Status floor_ok = secagg::CheckFloor(params.threshold(), params.neighbours(), floor);
      !floor_ok.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(kSitePolicyPrefix, floor_ok.message()));
  }
  // Distributed DP noise: each share is sized for this many sharers; fewer
  // would leave the sum with less noise than the run's epsilon counts on.
  const int noise_shares = DistributedNoiseShares(task.spec().dp());
  if (admission.sites_size() < noise_shares) {
    *violation = true;
    return SecAggError(absl::PermissionDeniedError(
        absl::StrCat("the admission of ", RoundName(run_id, round), " admits ",
                     admission.sites_size(), " sites, but the run's DP noise is shared among ",
                     noise_shares, ": the sum would carry too little noise")));
  }
  if (seen_nonces_.count(admission.nonce()) > 0) {
    *violation = true;
    return SecAggError(absl::PermissionDeniedError(absl::StrCat(
        "the admission of ", RoundName(run_id, round), " attempt ", admission.attempt(),
        " reuses the nonce of an earlier attempt: its old keys and shares would count again")));
  }
  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> participant =
      secagg::SecAggParticipant::Start(admission, task.spec().secagg(), floor, site_, key_pem,
                                       cert_pem, ca_pem, revoked);
  if (!participant.ok()) {
    // A forged admission or parameters off the approved spec.
    *violation = participant.status().code() == absl::StatusCode::kPermissionDenied;
    return SecAggError(participant.status());
  }
  seen_nonces_.insert(admission.nonce());

  absl::StatusOr<v1::KeyAdvertisement> advertisement = (*participant)->Advertisement();
  if (!advertisement.ok()) return SecAggError(advertisement.status());
  v1::SiteMessage advertise;
  *advertise.mutable_key_advertisement() = *std::move(advertisement);
  link_.Send(advertise);
  FEDMI_LOG(INFO) << Where(run_id, round) << "advertised keys";

  ASSIGN_OR_RETURN(v1::CoordinatorMessage peers, Await(SecAggInbox::Kind::kPeerKeys, task, abort));
  absl::StatusOr<v1::ShareBundle> shares = (*participant)->OnPeerKeys(peers.peer_keys());
  if (!shares.ok()) {
    // A forged or misattributed advertisement: the message names the site.
    *violation = shares.status().code() == absl::StatusCode::kPermissionDenied;
    return SecAggError(shares.status());
  }
  // Only CA-verified advertisements got this far: the sites that can add
  // a noise share. Fewer than the shares are sized for would leave the sum
  // short of the noise the run's epsilon counts on.
  if (peers.peer_keys().sites_size() < noise_shares) {
    *violation = true;
    return SecAggError(absl::PermissionDeniedError(absl::StrCat(
        RoundName(run_id, round), ": only ", peers.peer_keys().sites_size(),
        " sites advertised keys, but the run's DP noise is shared among ", noise_shares)));
  }
  if (noise_shares > 0) required_survivors_[RoundKey(run_id, round)] = noise_shares;
  const int neighbours = shares->shares_size();
  v1::SiteMessage share;
  *share.mutable_shares() = *std::move(shares);
  link_.Send(share);
  FEDMI_LOG(INFO) << Where(run_id, round) << "shared secrets with " << neighbours << " neighbours";
  return participant;
}

absl::StatusOr<TensorBundle> SiteSecAgg::MaskUpdate(const v1::TrainTask& task,
                                                    secagg::SecAggParticipant& participant,
                                                    const TensorBundle& global,
                                                    const TensorBundle& update, int64_t examples,
                                                    AbortCheck abort, bool* violation) {
  // Usually already buffered: the coordinator relays shares while sites train.
  ASSIGN_OR_RETURN(v1::CoordinatorMessage relayed,
                   Await(SecAggInbox::Kind::kRelayedShares, task, abort));
  absl::Status received = participant.OnRelayedShares(relayed.relayed_shares());
  if (!received.ok()) {
    // A share that fails authentication or comes from a non-neighbour; the
    // message names the sender.
    *violation = received.code() == absl::StatusCode::kDataLoss ||
                 received.code() == absl::StatusCode::kPermissionDenied;
    return SecAggError(received);
  }
  // The shares of every site, this one's included, have reached the
  // coordinator (it relays only once all have shared): a crash here is a
  // dropout after sharing and before the masked input.
  faults_.Reached(FaultPoint::kSiteBeforeMaskedUpload, task.round());
  // Site-level DP: every site counts once, so that no site's data moves
  // the model by more than the clip.
  const secagg::Weighting weighting =
      IsSiteLevelDp(task.spec()) ? secagg::Weighting::kUniform : secagg::Weighting::kByExamples;
  absl::StatusOr<TensorBundle> masked = participant.MaskUpdate(global, update, examples, weighting);
  if (!masked.ok()) return SecAggError(masked.status());
  FEDMI_LOG(INFO) << Where(task.run_id(), task.round()) << "masked the update towards "
                  << participant.SharingNeighbours().size() << " neighbours";
  return masked;
}

absl::Status SiteSecAgg::CheckSurvivorCount(int64_t run_id, int32_t round, int survivors) const {
  auto it = required_survivors_.find(RoundKey(run_id, round));
  if (it == required_survivors_.end() || survivors >= it->second) return absl::OkStatus();
  // Unmasking a sum of fewer shares would release it with less noise than
  // this site's ledger charged for: refuse, and the round is retried.
  return SecAggError(absl::PermissionDeniedError(
      absl::StrCat(RoundName(run_id, round), ": the survivors are ", survivors,
                   " sites, but the run's DP noise is shared among ", it->second,
                   "; this site does not help unmask a sum with less noise")));
}

void SiteSecAgg::KeepForUnmasking(int64_t run_id, int32_t round,
                                  std::unique_ptr<secagg::SecAggParticipant> participant) {
  participants_[RoundKey(run_id, round)] = std::move(participant);
}

absl::StatusOr<v1::SurvivorSignature> SiteSecAgg::SignSurvivors(const v1::SurvivorSet& set) {
  auto it = participants_.find(RoundKey(set.run_id(), set.round()));
  if (it == participants_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secure aggregation: this site holds no secure-aggregation state for ",
        RoundName(set.run_id(), set.round()), " (it may have restarted since its upload)"));
  }
  RETURN_IF_ERROR(CheckSurvivorCount(set.run_id(), set.round(), set.survivors_size()));
  absl::StatusOr<v1::SurvivorSignature> signature = it->second->SignSurvivors(set);
  if (!signature.ok()) return SecAggError(signature.status());
  FEDMI_LOG(INFO) << Where(set.run_id(), set.round()) << "signed a survivor set of "
                  << set.survivors_size() << " sites";
  return signature;
}

absl::StatusOr<v1::UnmaskResponse> SiteSecAgg::Reveal(const v1::UnmaskRequest& request) {
  const int64_t run_id = request.run_id();
  const int32_t round = request.round();
  auto it = participants_.find(RoundKey(run_id, round));
  if (it == participants_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("secure aggregation: this site holds no secure-aggregation state for ",
                     RoundName(run_id, round), " (it may have restarted since its upload)"));
  }
  // The coordinator asks once per round: whatever comes of this request,
  // the secrets are of no further use and are wiped when this returns.
  std::unique_ptr<secagg::SecAggParticipant> participant = std::move(it->second);
  participants_.erase(it);
  const absl::Status enough = CheckSurvivorCount(run_id, round, request.survivors_size());
  required_survivors_.erase(RoundKey(run_id, round));
  RETURN_IF_ERROR(enough);
  absl::StatusOr<v1::UnmaskResponse> response = participant->OnUnmaskRequest(request);
  if (!response.ok()) return SecAggError(response.status());
  FEDMI_LOG(INFO) << Where(run_id, round) << "revealed " << response->shares_size() << " shares";
  return response;
}

void SiteSecAgg::DropBefore(int64_t run_id, int32_t round) {
  const RoundKey first(run_id, std::numeric_limits<int32_t>::min());
  const RoundKey end(run_id, round);
  participants_.erase(participants_.lower_bound(first), participants_.lower_bound(end));
  required_survivors_.erase(required_survivors_.lower_bound(first),
                            required_survivors_.lower_bound(end));
}

void SiteSecAgg::DropRound(int64_t run_id, int32_t round) {
  participants_.erase(RoundKey(run_id, round));
  required_survivors_.erase(RoundKey(run_id, round));
}

void SiteSecAgg::DropRuns(const std::set<int64_t>& runs) {
  if (participants_.empty() && required_survivors_.empty()) return;
  for (int64_t run_id : runs) DropBefore(run_id, std::numeric_limits<int32_t>::max());
}

absl::StatusOr<v1::CoordinatorMessage> SiteSecAgg::Await(SecAggInbox::Kind kind,
                                                         const v1::TrainTask& task,
                                                         AbortCheck abort) {
  absl::StatusOr<v1::CoordinatorMessage> message =
      inbox_.Wait(kind, task.run_id(), task.round(), SecAggTimeout(task.spec()), abort);
  if (!message.ok()) return SecAggError(message.status());
  return message;
}

}  // namespace fedmi
