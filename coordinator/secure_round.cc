#include "coordinator/secure_round.h"

#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/enum_names.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/secagg/secagg_bundle.h"
#include "common/secagg/secagg_transcript.h"

namespace fedmi {
namespace {

// The same weight the site's SecAggParticipant::Weight computes: the two
// must agree bit for bit, since the coordinator divides by their sum.
double SiteWeight(int64_t examples, int64_t max_examples) {
  if (examples < 1) return 0.0;
  return std::min(1.0, static_cast<double>(examples) / static_cast<double>(max_examples));
}

// The round's parameters: the run's settings, with defaults derived from the
// selected sites, by the rule the sites check them against.
v1::SecAggParams RoundParams(const SecureRound::Setup& setup) {
  int64_t largest_declared = 0;
  for (const auto& site : setup.sites) {
    auto declared = setup.train_examples.find(site);
    if (declared != setup.train_examples.end()) {
      largest_declared = std::max(largest_declared, declared->second);
    }
  }
  return secagg::ResolveParams(setup.settings, static_cast<int>(setup.sites.size()),
                               largest_declared);
}

absl::StatusOr<std::string> FreshNonce() {
  std::string nonce(secagg::kAttemptNonceSize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) !=
      1) {
    return absl::InternalError("RAND_bytes failed to draw the attempt nonce");
  }
  return nonce;
}

}  // namespace

const char* SecureRound::StepName(Step step) {
  static constexpr EnumName<Step> kStepNames[] = {
      {Step::kAdvertising, "advertising keys"},
      {Step::kSharing, "sharing secrets"},
      {Step::kUploading, "uploading masked updates"},
      {Step::kCheckingSurvivors, "checking survivors"},
      {Step::kUnmasking, "unmasking"},
  };
  return NameOf(kStepNames, step);
}

absl::StatusOr<std::unique_ptr<SecureRound>> SecureRound::Begin(Setup setup) {
  if (setup.ca_pem.empty()) {
    return absl::FailedPreconditionError(
        "the coordinator runs without TLS, so key advertisements cannot be verified");
  }
  if (setup.identity_key_pem.empty() || setup.identity_cert_pem.empty()) {
    return absl::FailedPreconditionError(
        "the coordinator has no TLS identity to sign the secure round's admission with");
  }
  std::unique_ptr<SecureRound> secure(new SecureRound(std::move(setup)));
  const Setup& s = secure->setup_;
  v1::RoundAdmission& admission = secure->admission_;
  admission.set_run_id(s.run_id);
  admission.set_round(s.round);
  admission.set_attempt(s.attempt);
  ASSIGN_OR_RETURN(std::string nonce, FreshNonce());
  admission.set_nonce(std::move(nonce));
  std::vector<std::string> sorted_sites = s.sites;
  std::sort(sorted_sites.begin(), sorted_sites.end());
  for (const auto& site : sorted_sites) admission.add_sites(site);
  *admission.mutable_params() = RoundParams(s);
  RETURN_IF_ERROR(secagg::SignAdmission(s.identity_key_pem, s.identity_cert_pem, &admission));
  const v1::SecAggParams& params = admission.params();
  ASSIGN_OR_RETURN(secure->session_,
                   SecAggSession::Create(secagg::RoundIdOf(admission), params, s.sites, s.ca_pem));
  secagg::QuantizationOptions quantization;
  quantization.clip = params.clip();
  quantization.max_sites = params.max_sites();
  ASSIGN_OR_RETURN(secure->aggregator_, SecAggAggregator::Create(quantization));
  ASSIGN_OR_RETURN(secure->masked_specs_, MaskedUpdateSpecs(s.model_specs));
  RETURN_IF_ERROR(secure->aggregator_->Begin(s.round, s.model_specs, s.global_model_path));
  if (s.site_dp) secure->aggregator_->UseSiteDp(*s.site_dp);
  secure->EnterStep(Step::kAdvertising);
  return secure;
}

void SecureRound::EnterStep(Step step) {
  step_ = step;
  deadline_ = setup_.clock->Now() + setup_.step_timeout;
}

std::vector<std::string> SecureRound::Pending(const std::vector<std::string>& assigned) const {
  if (step_ == Step::kCheckingSurvivors || step_ == Step::kUnmasking) {
    return std::vector<std::string>(awaiting_.begin(), awaiting_.end());
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
  relayed.set_attempt(setup_.attempt);
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
  // Site-level DP: one site, one vote, whatever its size (sites mask with
  // weight 1 too; see SiteSecAgg::MaskUpdate).
  if (setup_.site_dp) return aggregator_->Accept(site, 1.0, update);
  const v1::SecAggParams& params = admission_.params();
  if (examples > params.max_examples()) {
    FEDMI_LOG(WARNING) << "run " << setup_.run_id << " round " << setup_.round << ": site '" << site
                       << "' trained on " << examples << " examples, more than the round's "
                       << params.max_examples() << "; its weight is capped at 1";
  }
  return aggregator_->Accept(site, SiteWeight(examples, params.max_examples()), update);
}

absl::StatusOr<v1::SurvivorSet> SecureRound::CloseUploads(const std::set<std::string>& uploaded) {
  ASSIGN_OR_RETURN(v1::SurvivorSet set, session_->CloseUploads(uploaded));
  awaiting_.clear();
  EnterStep(Step::kCheckingSurvivors);
  return set;
}

absl::Status SecureRound::OnSurvivorSignature(const std::string& site,
                                              const v1::SurvivorSignature& signature) {
  awaiting_.erase(site);
  return session_->OnSurvivorSignature(site, signature);
}

absl::StatusOr<v1::UnmaskRequest> SecureRound::CloseSignatures() {
  ASSIGN_OR_RETURN(v1::UnmaskRequest request, session_->CloseConsistency());
  awaiting_.clear();
  EnterStep(Step::kUnmasking);
  return request;
}

void SecureRound::AwaitUnmasking(std::set<std::string> asked) { awaiting_ = std::move(asked); }

absl::Status SecureRound::OnUnmaskResponse(const std::string& site,
                                           const v1::UnmaskResponse& response) {
  awaiting_.erase(site);
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
