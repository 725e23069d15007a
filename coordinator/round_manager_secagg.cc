// The secure-aggregation steps of RoundManager's training phase
// (docs/secure-aggregation.md). Kept apart from round_manager.cc so that the
// plaintext round reads on its own.
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/secagg/secagg_bundle.h"
#include "coordinator/round_manager.h"

namespace fedmi {
namespace {

constexpr double kDefaultClip = 1.0;

// The same weight the site's SecAggParticipant::Weight computes: the two
// must agree bit for bit, since the coordinator divides by their sum.
double SiteWeight(int64_t examples, int64_t max_examples) {
  if (examples < 1) return 0.0;
  return std::min(1.0, static_cast<double>(examples) / static_cast<double>(max_examples));
}

}  // namespace

const char* RoundManager::SecAggStepName(SecAggStep step) {
  switch (step) {
    case SecAggStep::kOff:
      return "off";
    case SecAggStep::kAdvertising:
      return "advertising keys";
    case SecAggStep::kSharing:
      return "sharing secrets";
    case SecAggStep::kUploading:
      return "uploading masked updates";
    case SecAggStep::kUnmasking:
      return "unmasking";
  }
  return "unknown";
}

absl::StatusOr<v1::SecAggParams> RoundManager::BeginSecureRound(
    const std::vector<std::string>& sites) {
  if (deps_.ca_pem.empty()) {
    return absl::FailedPreconditionError(
        "the coordinator runs without TLS, so key advertisements cannot be verified");
  }
  const v1::SecAggSettings& settings = run_.spec.secagg();
  const int n = static_cast<int>(sites.size());
  v1::SecAggParams params;
  const int neighbours = settings.neighbours() > 0 ? std::min(settings.neighbours(), n - 1) : n - 1;
  params.set_neighbours(neighbours);
  params.set_threshold(settings.threshold() > 0 ? settings.threshold() : neighbours / 2 + 1);
  params.set_clip(settings.clip() > 0 ? settings.clip() : kDefaultClip);
  params.set_max_sites(n);
  int64_t max_examples = settings.max_examples();
  if (max_examples <= 0) {
    for (const auto& site : sites) {
      max_examples = std::max(max_examples, deps_.roster->TrainExamples(site));
    }
  }
  params.set_max_examples(std::max<int64_t>(1, max_examples));

  ASSIGN_OR_RETURN(secagg_session_,
                   SecAggSession::Create(run_.id, round_, params, sites, deps_.ca_pem));
  secagg::QuantizationOptions quantization;
  quantization.clip = params.clip();
  quantization.max_sites = params.max_sites();
  ASSIGN_OR_RETURN(secagg_aggregator_, SecAggAggregator::Create(quantization));
  ASSIGN_OR_RETURN(masked_specs_, MaskedUpdateSpecs(model_specs_));
  ASSIGN_OR_RETURN(std::string global_path, deps_.models->PathFor(global_model_sha256_));
  RETURN_IF_ERROR(secagg_aggregator_->Begin(round_, model_specs_, global_path));
  secagg_params_ = params;
  secagg_step_ = SecAggStep::kAdvertising;
  unmask_pending_.clear();
  return params;
}

void RoundManager::EndSecureRound() {
  secagg_step_ = SecAggStep::kOff;
  secagg_session_.reset();
  secagg_aggregator_.reset();
  masked_specs_.clear();
  unmask_pending_.clear();
}

std::vector<std::string> RoundManager::PendingInSecAggStep() const {
  std::vector<std::string> pending;
  if (secagg_step_ == SecAggStep::kUnmasking) {
    return std::vector<std::string>(unmask_pending_.begin(), unmask_pending_.end());
  }
  for (const auto& [site, slot] : slots_) {
    if (slot.state != SiteState::kAssigned) continue;
    const bool waiting = secagg_step_ == SecAggStep::kAdvertising ? !slot.advertised
                         : secagg_step_ == SecAggStep::kSharing   ? !slot.shared
                                                                  : true;
    if (waiting) pending.push_back(site);
  }
  return pending;
}

void RoundManager::AdvanceSecureRound() {
  if (phase_ != RunPhase::kTraining || secagg_step_ == SecAggStep::kOff) return;
  const std::string where = absl::StrCat("round ", round_, ": secure aggregation: ");
  if (secagg_step_ == SecAggStep::kAdvertising) {
    if (!PendingInSecAggStep().empty()) return;
    auto peers = secagg_session_->ClosePeerKeys();
    if (!peers.ok()) return FailRound(absl::StrCat(where, peers.status().message()));
    v1::CoordinatorMessage message;
    *message.mutable_peer_keys() = *std::move(peers);
    for (const auto& site : secagg_session_->advertised()) {
      auto it = slots_.find(site);
      if (it != slots_.end() && it->second.state == SiteState::kAssigned) {
        deps_.roster->Send(site, message);
      }
    }
    secagg_step_ = SecAggStep::kSharing;
    phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
  }
  if (secagg_step_ == SecAggStep::kSharing) {
    if (!PendingInSecAggStep().empty()) return;
    auto bundles = secagg_session_->CloseSharing();
    if (!bundles.ok()) return FailRound(absl::StrCat(where, bundles.status().message()));
    for (auto& [site, slot] : slots_) {
      if (slot.state != SiteState::kAssigned) continue;
      if (!secagg_session_->MayUpload(site)) {
        // It never reached the key exchange's second step in time.
        slot.state = SiteState::kDropped;
        slot.record.state = "dropped";
        slot.record.detail = "did not share its secrets in time";
        continue;
      }
      v1::CoordinatorMessage message;
      v1::ShareBundle* relayed = message.mutable_relayed_shares();
      auto found = bundles->find(site);
      if (found != bundles->end()) {
        *relayed = found->second;
      } else {
        relayed->set_run_id(run_.id);
        relayed->set_round(round_);
      }
      deps_.roster->Send(site, message);
    }
    secagg_step_ = SecAggStep::kUploading;
    phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
  }
  if (secagg_step_ == SecAggStep::kUploading) {
    if (absl::Status quorum = CheckQuorum(); !quorum.ok()) {
      return FailRound(std::string(quorum.message()));
    }
    if (CountInState(SiteState::kAssigned) > 0) return;
    std::set<std::string> uploaded;
    for (const auto& [site, slot] : slots_) {
      if (slot.state == SiteState::kUploaded) uploaded.insert(site);
    }
    auto request = secagg_session_->CloseUploads(uploaded);
    if (!request.ok()) return FailRound(absl::StrCat(where, request.status().message()));
    v1::CoordinatorMessage message;
    *message.mutable_unmask_request() = *std::move(request);
    unmask_pending_.clear();
    for (const auto& site : uploaded) {
      if (deps_.roster->Send(site, message)) unmask_pending_.insert(site);
    }
    secagg_step_ = SecAggStep::kUnmasking;
    phase_deadline_ = deps_.clock->Now() + absl::Seconds(run_.spec.round_timeout_s());
  }
  if (secagg_step_ == SecAggStep::kUnmasking) {
    if (!unmask_pending_.empty()) return;
    if (absl::Status status = FinishSecureTraining(); !status.ok()) {
      FailRound(absl::StrCat(where, status.message()));
    }
  }
}

absl::Status RoundManager::FinishSecureTraining() {
  ASSIGN_OR_RETURN(UnmaskingInput unmasking, secagg_session_->Unmasking());
  ASSIGN_OR_RETURN(std::string model_sha, secagg_aggregator_->Finish(*deps_.models, unmasking));
  FEDMI_LOG(INFO) << "run " << run_.id << " round " << round_ << ": unmasked the sum of "
                  << unmasking.survivors.size() << " sites (" << unmasking.dropped.size()
                  << " dropped after sharing)";
  EndSecureRound();
  return CommitTrainedRound(model_sha);
}

absl::Status RoundManager::ExpectedMaskedUpdate(const std::string& site) const {
  if (secagg_step_ != SecAggStep::kUploading) {
    return absl::FailedPreconditionError(absl::StrCat("round ", round_, " of run ", run_.id,
                                                      " is not collecting masked updates (secure "
                                                      "aggregation step: ",
                                                      SecAggStepName(secagg_step_), ")"));
  }
  if (!secagg_session_->MayUpload(site)) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' did not share its secrets in round ", round_,
                     ", so its masked update could never be unmasked"));
  }
  return absl::OkStatus();
}

absl::Status RoundManager::AcceptMaskedUpdate(const std::string& site, ReceivedUpdate update,
                                              v1::AuditEntry* received) {
  auto reader = BundleFileReader::Open(update.path);
  absl::Status checked =
      reader.ok() ? CheckSpecsMatch((*reader)->specs(), masked_specs_) : reader.status();
  if (!checked.ok()) {
    std::remove(update.path.c_str());
    return checked;
  }
  const int64_t examples = update.metadata.examples();
  if (examples > secagg_params_.max_examples()) {
    FEDMI_LOG(WARNING) << "run " << run_.id << " round " << round_ << ": site '" << site
                       << "' trained on " << examples << " examples, more than the round's "
                       << secagg_params_.max_examples() << "; its weight is capped at 1";
  }
  absl::Status folded = secagg_aggregator_->Accept(
      site, SiteWeight(examples, secagg_params_.max_examples()), **reader);
  std::remove(update.path.c_str());
  if (!folded.ok()) {
    FailRound(absl::StrCat("round ", round_, ": adding the masked update of site '", site,
                           "' failed: ", folded.message()));
    return folded;
  }
  if (absl::Status audited = AuditUpdate(site, update, received); !audited.ok()) {
    FailRound(absl::StrCat("round ", round_, ": cannot record the masked update of site '", site,
                           "' in the audit log: ", audited.message()));
    return audited;
  }
  SiteSlot& slot = slots_[site];
  slot.state = SiteState::kUploaded;
  slot.record.examples = examples;
  slot.record.train_metrics = update.metadata.train_metrics();
  slot.record.update_sha256 = HexEncode(update.sha256);  // of the masked words
  slot.record.state = "uploaded";
  AdvanceSecureRound();
  return absl::OkStatus();
}

absl::Status RoundManager::OnKeyAdvertisement(const std::string& site,
                                              const v1::KeyAdvertisement& ad,
                                              const std::string& certificate_pem) {
  if (phase_ != RunPhase::kTraining || secagg_step_ != SecAggStep::kAdvertising ||
      ad.round() != round_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_.id, " is not collecting key advertisements for round ", ad.round()));
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SiteState::kAssigned) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site, "' has no open task in round ", round_, " of run ", run_.id));
  }
  absl::Status status = secagg_session_->OnAdvertisement(site, ad, certificate_pem);
  if (status.code() == absl::StatusCode::kPermissionDenied) {
    FailRound(absl::StrCat("round ", round_, ": secure aggregation: ", status.message()));
    return status;
  }
  RETURN_IF_ERROR(status);
  it->second.advertised = true;
  AdvanceSecureRound();
  return absl::OkStatus();
}

absl::Status RoundManager::OnShares(const std::string& site, const v1::ShareBundle& bundle) {
  if (phase_ != RunPhase::kTraining || secagg_step_ != SecAggStep::kSharing ||
      bundle.round() != round_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_.id, " is not collecting secret shares for round ", bundle.round()));
  }
  auto it = slots_.find(site);
  if (it == slots_.end() || it->second.state != SiteState::kAssigned || !it->second.advertised) {
    return absl::FailedPreconditionError(absl::StrCat(
        "site '", site, "' is not sharing secrets in round ", round_, " of run ", run_.id));
  }
  if (absl::Status status = secagg_session_->OnShares(site, bundle); !status.ok()) {
    // Shares the session refuses cannot be relayed; the round goes on
    // without this site, as if it had dropped out before sharing.
    OnSiteGaveUp(site, absl::StrCat("sent unusable secret shares: ", status.message()), false);
    return status;
  }
  it->second.shared = true;
  AdvanceSecureRound();
  return absl::OkStatus();
}

absl::Status RoundManager::OnUnmaskResponse(const std::string& site,
                                            const v1::UnmaskResponse& response) {
  if (phase_ != RunPhase::kTraining || secagg_step_ != SecAggStep::kUnmasking ||
      response.round() != round_ || unmask_pending_.count(site) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("run ", run_.id,
                                                      " is not waiting for shares from site '",
                                                      site, "' in round ", response.round()));
  }
  unmask_pending_.erase(site);
  absl::Status status = secagg_session_->OnUnmaskResponse(site, response);
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
  if (phase_ != RunPhase::kTraining || secagg_step_ == SecAggStep::kOff || round != round_) {
    return;
  }
  FailRound(absl::StrCat("round ", round_, ": site '", site,
                         "' reports a secure aggregation violation: ", reason));
}

}  // namespace fedmi
