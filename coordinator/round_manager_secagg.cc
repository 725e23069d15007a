// RoundManager's driving of a SecureRound (round_manager.h): it checks that
// each protocol message belongs to the round and the site, hands it to the
// SecureRound, and closes a step once no site still in the round owes it
// anything. The protocol's bookkeeping lives in coordinator/secure_round.cc.
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/runspec/dp_spec.h"
#include "coordinator/round_manager.h"

namespace fedmi {

absl::StatusOr<v1::RoundAdmission> RoundManager::BeginSecureRound(
    const std::vector<std::string>& sites) {
  SecureRound::Setup setup;
  setup.run_id = run_.id;
  setup.round = round_;
  setup.attempt = round_retries_used_ + 1;
  setup.settings = run_.spec.secagg();
  setup.sites = sites;
  for (const auto& site : sites) setup.train_examples[site] = deps_.roster->TrainExamples(site);
  setup.ca_pem = deps_.ca_pem;
  setup.identity_key_pem = deps_.identity_key_pem;
  setup.identity_cert_pem = deps_.identity_cert_pem;
  setup.model_specs = round_specs_;
  if (!deps_.ca_pem.empty()) {
    ASSIGN_OR_RETURN(setup.global_model_path, deps_.models->PathFor(round_global_sha256_));
  }
  if (IsSiteLevelDp(run_.spec)) setup.site_dp = SiteDpSumOfRun();
  setup.clock = deps_.clock;
  setup.step_timeout = absl::Seconds(run_.spec.round_timeout_s());
  ASSIGN_OR_RETURN(secure_, SecureRound::Begin(std::move(setup)));
  return secure_->admission();
}

void RoundManager::AdvanceSecureRound() {
  if (phase_ != RunPhase::kTraining || secure_ == nullptr) return;
  const std::string where = absl::StrCat("round ", round_, ": secure aggregation: ");
  using Step = SecureRound::Step;
  if (secure_->step() == Step::kAdvertising) {
    if (!secure_->Pending(SitesInState(SlotState::kAssigned)).empty()) return;
    auto peers = secure_->ClosePeerKeys();
    if (!peers.ok()) return FailRound(absl::StrCat(where, peers.status().message()));
    v1::CoordinatorMessage message;
    *message.mutable_peer_keys() = *std::move(peers);
    for (const auto& site : secure_->advertised_sites()) {
      auto it = slots_.find(site);
      if (it != slots_.end() && it->second.state == SlotState::kAssigned) {
        deps_.roster->Send(site, message);
      }
    }
  }
  if (secure_->step() == Step::kSharing) {
    if (!secure_->Pending(SitesInState(SlotState::kAssigned)).empty()) return;
    auto bundles = secure_->CloseSharing();
    if (!bundles.ok()) return FailRound(absl::StrCat(where, bundles.status().message()));
    for (auto& [site, slot] : slots_) {
      if (slot.state != SlotState::kAssigned) continue;
      if (!secure_->MayUpload(site)) {
        // It never reached the key exchange's second step in time.
        slot.state = SlotState::kDropped;
        slot.record.state = ParticipationState::kDropped;
        slot.record.detail = "did not share its secrets in time";
        continue;
      }
      v1::CoordinatorMessage message;
      auto found = bundles->find(site);
      *message.mutable_relayed_shares() =
          found != bundles->end() ? found->second : secure_->EmptyRelay();
      deps_.roster->Send(site, message);
    }
  }
  if (secure_->step() == Step::kUploading) {
    if (absl::Status quorum = CheckQuorum(); !quorum.ok()) {
      return FailRound(std::string(quorum.message()));
    }
    if (CountInState(SlotState::kAssigned) > 0) return;
    const std::vector<std::string> uploaded_sites = SitesInState(SlotState::kUploaded);
    // Distributed DP noise: a sum missing shares is never unmasked (sites
    // refuse to help, since their ledgers charged the full noise); the
    // round is started afresh.
    if (const int shares = DistributedNoiseShares(run_.spec.dp());
        static_cast<int>(uploaded_sites.size()) < shares) {
      return FailRound(absl::StrCat(where, "only ", uploaded_sites.size(), " of the ", shares,
                                    " sites whose noise shares make up the round's DP noise "
                                    "uploaded; the sum is not unmasked"));
    }
    const std::set<std::string> uploaded(uploaded_sites.begin(), uploaded_sites.end());
    auto survivors = secure_->CloseUploads(uploaded);
    if (!survivors.ok()) return FailRound(absl::StrCat(where, survivors.status().message()));
    v1::CoordinatorMessage message;
    *message.mutable_survivor_set() = *std::move(survivors);
    std::set<std::string> asked;
    for (const auto& site : uploaded) {
      if (deps_.roster->Send(site, message)) asked.insert(site);
    }
    secure_->AwaitSignatures(std::move(asked));
  }
  if (secure_->signatures_complete()) {
    auto request = secure_->CloseSignatures();
    if (!request.ok()) return FailRound(absl::StrCat(where, request.status().message()));
    nlohmann::json signers = nlohmann::json::array();
    for (const auto& signature : request->signatures()) signers.push_back(signature.site());
    Audit(audit::Action::kSecAggUnmaskRequested, round_,
          {{"attempt", request->attempt()},
           {"survivors",
            std::vector<std::string>(request->survivors().begin(), request->survivors().end())},
           {"dropped",
            std::vector<std::string>(request->dropped().begin(), request->dropped().end())},
           {"signers", signers}});
    v1::CoordinatorMessage message;
    *message.mutable_unmask_request() = *std::move(request);
    std::set<std::string> asked;
    for (const auto& site : secure_->signers()) {
      if (deps_.roster->Send(site, message)) asked.insert(site);
    }
    secure_->AwaitUnmasking(std::move(asked));
  }
  if (secure_->unmasking_complete()) {
    auto trained_sha = secure_->Finish(*deps_.models);
    if (!trained_sha.ok()) return FailRound(absl::StrCat(where, trained_sha.status().message()));
    secure_.reset();
    auto model_sha = CompleteRoundModel(*trained_sha);
    if (!model_sha.ok()) return FailRound(absl::StrCat(where, model_sha.status().message()));
    if (absl::Status status = CommitTrainedRound(*model_sha); !status.ok()) {
      FailRound(absl::StrCat(where, status.message()));
    }
  }
}

absl::Status RoundManager::AcceptMaskedUpdate(const std::string& site, ReceivedUpdate update,
                                              v1::AuditEntry* received) {
  auto reader = BundleFileReader::Open(update.path);
  absl::Status checked =
      reader.ok() ? CheckSpecsMatch((*reader)->specs(), secure_->masked_specs()) : reader.status();
  if (!checked.ok()) {
    RemoveSpooled(update);
    return checked;
  }
  absl::Status folded = secure_->AcceptMaskedUpdate(site, update.metadata.examples(), **reader);
  RemoveSpooled(update);
  if (!folded.ok()) {
    FailRound(absl::StrCat("round ", round_, ": adding the masked update of site '", site,
                           "' failed: ", folded.message()));
    return folded;
  }
  RETURN_IF_ERROR(RecordFoldedUpdate(site, update, received, "masked update"));
  AdvanceSecureRound();
  return absl::OkStatus();
}

absl::Status RoundManager::OnKeyAdvertisement(const std::string& site,
                                              const v1::KeyAdvertisement& ad,
                                              const std::string& certificate_pem) {
  if (phase_ != RunPhase::kTraining || secure_ == nullptr ||
      secure_->step() != SecureRound::Step::kAdvertising || ad.round() != round_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_.id, " is not collecting key advertisements for round ", ad.round()));
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SlotState::kAssigned) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site, "' has no open task in round ", round_, " of run ", run_.id));
  }
  absl::Status status = secure_->OnAdvertisement(site, ad, certificate_pem);
  if (status.code() == absl::StatusCode::kPermissionDenied) {
    FailRound(absl::StrCat("round ", round_, ": secure aggregation: ", status.message()));
    return status;
  }
  RETURN_IF_ERROR(status);
  AdvanceSecureRound();
  return absl::OkStatus();
}

absl::Status RoundManager::OnShares(const std::string& site, const v1::ShareBundle& bundle) {
  if (phase_ != RunPhase::kTraining || secure_ == nullptr ||
      secure_->step() != SecureRound::Step::kSharing || bundle.round() != round_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_.id, " is not collecting secret shares for round ", bundle.round()));
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SlotState::kAssigned ||
      !secure_->advertised(site)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site '", site, "' is not sharing secrets in round ", round_, " of run ", run_.id));
  }
  if (absl::Status status = secure_->OnShares(site, bundle); !status.ok()) {
    // Shares the session refuses cannot be relayed; the round goes on
    // without this site, as if it had dropped out before sharing.
    OnSiteGaveUp(site, absl::StrCat("sent unusable secret shares: ", status.message()), false);
    return status;
  }
  AdvanceSecureRound();
  return absl::OkStatus();
}

absl::Status RoundManager::OnSurvivorSignature(const std::string& site,
                                               const v1::SurvivorSignature& signature) {
  if (phase_ != RunPhase::kTraining || secure_ == nullptr || signature.round() != round_ ||
      !secure_->awaiting_signature(site)) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_.id, " is not waiting for a survivor signature from site '", site,
                     "' in round ", signature.round()));
  }
  absl::Status status = secure_->OnSurvivorSignature(site, signature);
  if (!status.ok()) {
    // The other survivors' signatures may still be enough.
    FEDMI_LOG(WARNING) << "run " << run_.id << " round " << round_
                       << ": ignoring the survivor signature of site '" << site
                       << "': " << status.message();
  }
  AdvanceSecureRound();
  return status;
}

absl::Status RoundManager::OnUnmaskResponse(const std::string& site,
                                            const v1::UnmaskResponse& response) {
  if (phase_ != RunPhase::kTraining || secure_ == nullptr || response.round() != round_ ||
      !secure_->awaiting_unmask(site)) {
    return absl::FailedPreconditionError(absl::StrCat("run ", run_.id,
                                                      " is not waiting for shares from site '",
                                                      site, "' in round ", response.round()));
  }
  absl::Status status = secure_->OnUnmaskResponse(site, response);
  nlohmann::json self_seeds = nlohmann::json::array();
  nlohmann::json mask_keys = nlohmann::json::array();
  for (const auto& share : response.shares()) {
    (share.self_seed() ? self_seeds : mask_keys).push_back(share.owner());
  }
  nlohmann::json answered = {{"site", site},
                             {"attempt", response.attempt()},
                             {"self_seed_shares_of", self_seeds},
                             {"mask_key_shares_of", mask_keys}};
  if (!status.ok()) answered["ignored"] = std::string(status.message());
  Audit(audit::Action::kSecAggUnmaskAnswered, round_, answered);
  if (!status.ok()) {
    // The other survivors' shares may still be enough.
    FEDMI_LOG(WARNING) << "run " << run_.id << " round " << round_
                       << ": ignoring the shares of site '" << site << "': " << status.message();
  }
  AdvanceSecureRound();
  return status;
}

void RoundManager::OnProtocolViolation(const std::string& site, int32_t round,
                                       const std::string& reason) {
  if (phase_ != RunPhase::kTraining || secure_ == nullptr || round != round_) return;
  FailRound(absl::StrCat("round ", round_, ": site '", site,
                         "' reports a secure aggregation violation: ", reason));
}

}  // namespace fedmi
