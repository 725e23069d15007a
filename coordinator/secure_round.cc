#include "coordinator/secure_round.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/enum_names.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/secagg/secagg_bundle.h"

namespace fedmi {
namespace {

constexpr double kDefaultClip = 1.0;

// The same weight the site's SecAggParticipant::Weight computes: the two
// must agree bit for bit, since the coordinator divides by their sum.
double SiteWeight(int64_t examples, int64_t max_examples) {
  if (examples < 1) return 0.0;
  return std::min(1.0, static_cast<double>(examples) / static_cast<double>(max_examples));
}

// The round's parameters: the run's settings, with defaults derived from the
// selected sites.
v1::SecAggParams RoundParams(const SecureRound::Setup& setup) {
  const v1::SecAggSettings& settings = setup.settings;
  const int n = static_cast<int>(setup.sites.size());
  v1::SecAggParams params;
  const int neighbours = settings.neighbours() > 0 ? std::min(settings.neighbours(), n - 1) : n - 1;
  params.set_neighbours(neighbours);
  params.set_threshold(settings.threshold() > 0 ? settings.threshold() : neighbours / 2 + 1);
  params.set_clip(settings.clip() > 0 ? settings.clip() : kDefaultClip);
  params.set_max_sites(n);
  int64_t max_examples = settings.max_examples();
  if (max_examples <= 0) {
    for (const auto& site : setup.sites) {
      auto declared = setup.train_examples.find(site);
      if (declared != setup.train_examples.end()) {
        max_examples = std::max(max_examples, declared->second);
      }
    }
  }
  params.set_max_examples(std::max<int64_t>(1, max_examples));
  return params;
}

}  // namespace

const char* SecureRound::StepName(Step step) {
  static constexpr EnumName<Step> kStepNames[] = {
      {Step::kAdvertising, "advertising keys"},
      {Step::kSharing, "sharing secrets"},
      {Step::kUploading, "uploading masked updates"},
      {Step::kUnmasking, "unmasking"},
  };
  return NameOf(kStepNames, step);
}

absl::StatusOr<std::unique_ptr<SecureRound>> SecureRound::Begin(Setup setup) {
  if (setup.ca_pem.empty()) {
    return absl::FailedPreconditionError(
        "the coordinator runs without TLS, so key advertisements cannot be verified");
  }
  std::unique_ptr<SecureRound> secure(new SecureRound(std::move(setup)));
  const Setup& s = secure->setup_;
  secure->params_ = RoundParams(s);
  ASSIGN_OR_RETURN(secure->session_,
                   SecAggSession::Create(s.run_id, s.round, secure->params_, s.sites, s.ca_pem));
  secagg::QuantizationOptions quantization;
  quantization.clip = secure->params_.clip();
  quantization.max_sites = secure->params_.max_sites();
  ASSIGN_OR_RETURN(secure->aggregator_, SecAggAggregator::Create(quantization));
  ASSIGN_OR_RETURN(secure->masked_specs_, MaskedUpdateSpecs(s.model_specs));
  RETURN_IF_ERROR(secure->aggregator_->Begin(s.round, s.model_specs, s.global_model_path));
  secure->EnterStep(Step::kAdvertising);
  return secure;
}

void SecureRound::EnterStep(Step step) {
  step_ = step;
  deadline_ = setup_.clock->Now() + setup_.step_timeout;
}

std::vector<std::string> SecureRound::Pending(const std::vector<std::string>& assigned) const {
  if (step_ == Step::kUnmasking) {
    return std::vector<std::string>(unmask_pending_.begin(), unmask_pending_.end());
  }
  std::vector<std::string> pending;
  for (const auto& site : assigned) {
    const bool waiting = step_ == Step::kAdvertising ? advertised_.count(site) == 0
                         : step_ == Step::kSharing   ? shared_.count(site) == 0
                                                     : true;
    if (waiting) pending.push_back(site);
  }
  return pending;
}

absl::Status SecureRound::OnAdvertisement(const std::string& site, const v1::KeyAdvertisement& ad,
                                          const std::string& certificate_pem) {
  RETURN_IF_ERROR(session_->OnAdvertisement(site, ad, certificate_pem));
  advertised_.insert(site);
  return absl::OkStatus();
}

absl::StatusOr<v1::PeerKeys> SecureRound::ClosePeerKeys() {
  ASSIGN_OR_RETURN(v1::PeerKeys peers, session_->ClosePeerKeys());
  EnterStep(Step::kSharing);
  return peers;
}

absl::Status SecureRound::OnShares(const std::string& site, const v1::ShareBundle& bundle) {
  RETURN_IF_ERROR(session_->OnShares(site, bundle));
  shared_.insert(site);
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, v1::ShareBundle>> SecureRound::CloseSharing() {
  ASSIGN_OR_RETURN(auto bundles, session_->CloseSharing());
  EnterStep(Step::kUploading);
  return bundles;
}

v1::ShareBundle SecureRound::EmptyRelay() const {
  v1::ShareBundle relayed;
  relayed.set_run_id(setup_.run_id);
  relayed.set_round(setup_.round);
  return relayed;
}

absl::Status SecureRound::ExpectMaskedUpdate(const std::string& site) const {
  if (step_ != Step::kUploading) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", setup_.round, " of run ", setup_.run_id,
        " is not collecting masked updates (secure aggregation step: ", StepName(step_), ")"));
  }
  if (!session_->MayUpload(site)) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' did not share its secrets in round ", setup_.round,
                     ", so its masked update could never be unmasked"));
  }
  return absl::OkStatus();
}

absl::Status SecureRound::AcceptMaskedUpdate(const std::string& site, int64_t examples,
                                             BundleFileReader& update) {
  if (examples > params_.max_examples()) {
    FEDMI_LOG(WARNING) << "run " << setup_.run_id << " round " << setup_.round << ": site '" << site
                       << "' trained on " << examples << " examples, more than the round's "
                       << params_.max_examples() << "; its weight is capped at 1";
  }
  return aggregator_->Accept(site, SiteWeight(examples, params_.max_examples()), update);
}

absl::StatusOr<v1::UnmaskRequest> SecureRound::CloseUploads(const std::set<std::string>& uploaded) {
  ASSIGN_OR_RETURN(v1::UnmaskRequest request, session_->CloseUploads(uploaded));
  unmask_pending_.clear();
  EnterStep(Step::kUnmasking);
  return request;
}

void SecureRound::AwaitUnmasking(std::set<std::string> asked) {
  unmask_pending_ = std::move(asked);
}

absl::Status SecureRound::OnUnmaskResponse(const std::string& site,
                                           const v1::UnmaskResponse& response) {
  unmask_pending_.erase(site);
  return session_->OnUnmaskResponse(site, response);
}

absl::StatusOr<std::string> SecureRound::Finish(const ModelStore& store) {
  ASSIGN_OR_RETURN(UnmaskingInput unmasking, session_->Unmasking());
  ASSIGN_OR_RETURN(std::string model_sha, aggregator_->Finish(store, unmasking));
  FEDMI_LOG(INFO) << "run " << setup_.run_id << " round " << setup_.round
                  << ": unmasked the sum of " << unmasking.survivors.size() << " sites ("
                  << unmasking.dropped.size() << " dropped after sharing)";
  return model_sha;
}

}  // namespace fedmi
