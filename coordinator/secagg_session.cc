#include "coordinator/secagg_session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status.h"
#include "common/crypto/signing.h"
#include "common/secagg/secagg_transcript.h"

namespace fedmi {
namespace {

absl::StatusOr<std::string> Reconstruct(const std::map<std::string, std::string>& revealed,
                                        int threshold, const std::string& what) {
  if (static_cast<int>(revealed.size()) < threshold) {
    return absl::FailedPreconditionError(absl::StrCat("cannot unmask: ", revealed.size(),
                                                      " shares of ", what, ", need ", threshold));
  }
  std::vector<secagg::Share> shares;
  for (const auto& [revealer, bytes] : revealed) {
    auto share = secagg::ParseShare(bytes);
    if (!share.ok()) {
      return absl::DataLossError(absl::StrCat("share of ", what, " revealed by site '", revealer,
                                              "' is malformed: ", share.status().message()));
    }
    shares.push_back(*std::move(share));
  }
  auto secret = secagg::ShamirReconstruct(shares, threshold);
  if (!secret.ok()) {
    return absl::Status(secret.status().code(),
                        absl::StrCat("reconstructing ", what, ": ", secret.status().message()));
  }
  return secret;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggSession>> SecAggSession::Create(
    secagg::RoundId id, const v1::SecAggParams& params, std::vector<std::string> selected,
    std::string ca_pem) {
  if (params.threshold() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg threshold must be at least 2, got ", params.threshold()));
  }
  if (params.threshold() > params.neighbours()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg threshold ", params.threshold(), " exceeds the neighbour count ",
        params.neighbours(), ": a site's secrets are shared among its neighbours only"));
  }
  if (static_cast<int>(selected.size()) < params.threshold()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secure aggregation needs at least ", params.threshold(), " sites, got ", selected.size()));
  }
  std::unique_ptr<SecAggSession> session(new SecAggSession());
  session->round_ = id.round;
  session->id_ = std::move(id);
  session->params_ = params;
  session->selected_ = std::set<std::string>(selected.begin(), selected.end());
  session->ca_pem_ = std::move(ca_pem);
  return session;
}

absl::Status SecAggSession::OnAdvertisement(const std::string& site, v1::KeyAdvertisement ad,
                                            const std::string& certificate_pem) {
  if (peer_keys_closed_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key advertisement of site '", site, "' arrived after round ", round_, " closed them"));
  }
  if (selected_.count(site) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' is not selected for round ", round_));
  }
  if (ads_.count(site) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("site '", site, "' already advertised keys for round ", round_));
  }
  if (ad.site() != site) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' sent a key advertisement for '", ad.site(), "'"));
  }
  ad.set_certificate_pem(certificate_pem);
  if (absl::Status verified = secagg::VerifyAdvertisement(ad, id_, ca_pem_, absl::Now());
      !verified.ok()) {
    return verified;
  }
  ads_[site] = std::move(ad);
  return absl::OkStatus();
}

bool SecAggSession::AllAdvertised() const { return ads_.size() == selected_.size(); }

absl::StatusOr<v1::PeerKeys> SecAggSession::ClosePeerKeys() {
  // Each site's secrets go to its neighbours only, so t shares need at
  // least t other sites.
  if (static_cast<int>(ads_.size()) < params_.threshold() + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", round_, ": only ", ads_.size(), " of ", selected_.size(),
                     " sites advertised keys, need ", params_.threshold() + 1));
  }
  peer_keys_closed_ = true;
  v1::PeerKeys peers;
  peers.set_run_id(id_.run_id);
  peers.set_round(id_.round);
  peers.set_attempt(id_.attempt);
  *peers.mutable_params() = params_;
  std::vector<v1::KeyAdvertisement> sorted;
  advertised_.clear();
  for (const auto& [site, ad] : ads_) {  // std::map: sorted by site
    advertised_.push_back(site);
    sorted.push_back(ad);
    *peers.add_sites() = ad;
  }
  peers.set_graph_seed(secagg::GraphSeed(sorted));
  graph_seed_ = peers.graph_seed();
  ASSIGN_OR_RETURN(graph_, secagg::NeighbourGraph(static_cast<int>(advertised_.size()),
                                                  params_.neighbours(), peers.graph_seed()));
  return peers;
}

int SecAggSession::IndexOf(const std::string& site) const {
  auto it = std::find(advertised_.begin(), advertised_.end(), site);
  return it == advertised_.end() ? -1 : static_cast<int>(it - advertised_.begin());
}

absl::Status SecAggSession::OnShares(const std::string& site, const v1::ShareBundle& bundle) {
  if (!peer_keys_closed_ || sharing_closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", round_, " is not collecting secret shares"));
  }
  const int index = IndexOf(site);
  if (index < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' did not advertise keys for round ", round_));
  }
  if (shares_by_sender_.count(site) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("site '", site, "' already sent its shares for round ", round_));
  }
  if (bundle.run_id() != id_.run_id || bundle.round() != id_.round ||
      bundle.attempt() != id_.attempt) {
    return absl::InvalidArgumentError(absl::StrCat("shares of site '", site, "' are for run ",
                                                   bundle.run_id(), " round ", bundle.round(),
                                                   " attempt ", bundle.attempt()));
  }
  std::set<std::string> recipients;
  for (const auto& share : bundle.shares()) {
    const int to = IndexOf(share.recipient());
    const auto& neighbours = graph_[index];
    if (share.sender() != site || to < 0 ||
        std::find(neighbours.begin(), neighbours.end(), to) == neighbours.end()) {
      return absl::PermissionDeniedError(absl::StrCat("site '", site, "' sent a share from '",
                                                      share.sender(), "' to '", share.recipient(),
                                                      "', which is not one of its neighbours"));
    }
    if (!recipients.insert(share.recipient()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("site '", site, "' sent two shares to '", share.recipient(), "'"));
    }
  }
  // A site that shares with only some neighbours could never be unmasked
  // if it then dropped.
  if (recipients.size() != graph_[index].size()) {
    return absl::InvalidArgumentError(absl::StrCat("site '", site, "' sent shares to ",
                                                   recipients.size(), " of its ",
                                                   graph_[index].size(), " neighbours"));
  }
  shares_by_sender_[site] = bundle;
  return absl::OkStatus();
}

bool SecAggSession::AllShared() const { return shares_by_sender_.size() == advertised_.size(); }

absl::StatusOr<std::map<std::string, v1::ShareBundle>> SecAggSession::CloseSharing() {
  if (static_cast<int>(shares_by_sender_.size()) < params_.threshold()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round_, ": only ", shares_by_sender_.size(), " of ", advertised_.size(),
        " sites shared their secrets, need ", params_.threshold()));
  }
  sharing_closed_ = true;
  std::map<std::string, v1::ShareBundle> by_recipient;
  for (const auto& [sender, bundle] : shares_by_sender_) {
    u2_.insert(sender);
    for (const auto& share : bundle.shares()) {
      v1::ShareBundle& out = by_recipient[share.recipient()];
      out.set_run_id(id_.run_id);
      out.set_round(id_.round);
      out.set_attempt(id_.attempt);
      *out.add_shares() = share;
    }
  }
  // Only sites that shared take part from here on.
  for (auto it = by_recipient.begin(); it != by_recipient.end();) {
    it = u2_.count(it->first) ? std::next(it) : by_recipient.erase(it);
  }
  return by_recipient;
}

bool SecAggSession::MayUpload(const std::string& site) const {
  return sharing_closed_ && !uploads_closed_ && u2_.count(site) > 0;
}

std::set<std::string> SecAggSession::shared() const { return u2_; }

absl::StatusOr<v1::SurvivorSet> SecAggSession::CloseUploads(const std::set<std::string>& uploaded) {
  if (!sharing_closed_) {
    return absl::FailedPreconditionError("uploads closed before secrets were shared");
  }
  survivors_.clear();
  dropped_.clear();
  for (const std::string& site : uploaded) {
    if (u2_.count(site) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("site '", site, "' uploaded but never shared its secrets"));
    }
    survivors_.insert(site);
  }
  for (const std::string& site : u2_) {
    if (survivors_.count(site) == 0) dropped_.insert(site);
  }
  // A survivor's seed is rebuilt from t shares held by the other
  // survivors, so fewer than t + 1 could never be unmasked.
  if (static_cast<int>(survivors_.size()) < params_.threshold() + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round_, ": only ", survivors_.size(), " masked updates arrived, need ",
        params_.threshold() + 1, " (threshold + 1) to unmask"));
  }
  uploads_closed_ = true;
  v1::SurvivorSet set;
  set.set_run_id(id_.run_id);
  set.set_round(id_.round);
  set.set_attempt(id_.attempt);
  for (const auto& site : survivors_) set.add_survivors(site);
  return set;
}

absl::Status SecAggSession::OnSurvivorSignature(const std::string& site,
                                                const v1::SurvivorSignature& signature) {
  if (!uploads_closed_ || consistency_closed_ || survivors_.count(site) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site, "' was not asked to sign the survivors of round ", round_));
  }
  if (signature.site() != site || signature.run_id() != id_.run_id ||
      signature.round() != id_.round || signature.attempt() != id_.attempt) {
    return absl::InvalidArgumentError(
        absl::StrCat("site '", site, "' sent a survivor signature for another site or attempt"));
  }
  const std::vector<std::string> survivors(survivors_.begin(), survivors_.end());
  if (!VerifyWithCertificatePem(ads_.at(site).certificate_pem(),
                                secagg::SurvivorSetBytes(id_, graph_seed_, survivors),
                                signature.signature())
           .ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the survivor signature of site '", site,
                     "' does not verify: it saw other peer keys or another survivor set"));
  }
  signatures_[site] = signature;
  return absl::OkStatus();
}

absl::StatusOr<v1::UnmaskRequest> SecAggSession::CloseConsistency() {
  if (!uploads_closed_ || consistency_closed_) {
    return absl::FailedPreconditionError("the survivor set is not being signed");
  }
  if (static_cast<int>(signatures_.size()) < params_.threshold()) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", round_, ": only ", signatures_.size(), " of ", survivors_.size(),
                     " survivors signed the survivor set, need ", params_.threshold()));
  }
  consistency_closed_ = true;
  v1::UnmaskRequest request;
  request.set_run_id(id_.run_id);
  request.set_round(id_.round);
  request.set_attempt(id_.attempt);
  for (const auto& site : survivors_) request.add_survivors(site);
  for (const auto& site : dropped_) request.add_dropped(site);
  for (const auto& [site, signature] : signatures_) {
    signers_.insert(site);
    *request.add_signatures() = signature;
  }
  return request;
}

absl::Status SecAggSession::OnUnmaskResponse(const std::string& site,
                                             const v1::UnmaskResponse& response) {
  if (!consistency_closed_ || signers_.count(site) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site, "' has no open unmask request in round ", round_));
  }
  for (const auto& share : response.shares()) {
    const bool wanted =
        share.self_seed() ? survivors_.count(share.owner()) > 0 : dropped_.count(share.owner()) > 0;
    if (!wanted) {
      return absl::InvalidArgumentError(absl::StrCat("site '", site, "' revealed an unrequested ",
                                                     share.self_seed() ? "self seed" : "mask key",
                                                     " share of '", share.owner(), "'"));
    }
    // Only a neighbour of the owner holds one of its shares, at x = its own
    // index + 1: anything else is forged and would corrupt the sum.
    const int owner = IndexOf(share.owner());
    const int revealer = IndexOf(site);
    const auto& holders = graph_[owner];
    auto parsed = secagg::ParseShare(share.share());
    if (std::find(holders.begin(), holders.end(), revealer) == holders.end() || !parsed.ok() ||
        static_cast<int>(parsed->x) != revealer + 1) {
      return absl::PermissionDeniedError(absl::StrCat("site '", site, "' revealed a share of '",
                                                      share.owner(), "' it cannot hold"));
    }
    revealed_[{share.owner(), share.self_seed()}][site] = share.share();
  }
  return absl::OkStatus();
}

absl::StatusOr<UnmaskingInput> SecAggSession::Unmasking() const {
  if (!consistency_closed_) {
    return absl::FailedPreconditionError("the survivor set is not signed yet");
  }
  const int t = params_.threshold();
  auto revealed_for = [&](const std::string& owner, bool self_seed) {
    auto it = revealed_.find({owner, self_seed});
    return it == revealed_.end() ? std::map<std::string, std::string>{} : it->second;
  };
  // Fail now, naming the site, rather than halfway through the model.
  for (const auto& site : survivors_) {
    if (static_cast<int>(revealed_for(site, true).size()) < t) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot unmask: the self-mask seed of site '", site, "' has ",
                       revealed_for(site, true).size(), " revealed shares, need ", t));
    }
  }
  for (const auto& site : dropped_) {
    if (static_cast<int>(revealed_for(site, false).size()) < t) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot unmask: the mask key of dropped site '", site, "' has ",
                       revealed_for(site, false).size(), " revealed shares, need ", t));
    }
  }
  UnmaskingInput input;
  // Sites mask only with neighbours that shared (U2).
  input.graph.assign(graph_.size(), {});
  for (size_t i = 0; i < graph_.size(); ++i) {
    if (u2_.count(advertised_[i]) == 0) continue;
    for (int j : graph_[i]) {
      if (u2_.count(advertised_[j]) > 0) input.graph[i].push_back(j);
    }
  }
  for (const auto& site : survivors_) input.survivors.push_back(IndexOf(site));
  for (const auto& site : dropped_) input.dropped.push_back(IndexOf(site));

  const std::vector<std::string> names = advertised_;
  const std::map<std::string, v1::KeyAdvertisement> ads = ads_;
  const secagg::RoundId id = id_;
  auto self_shares = std::make_shared<std::map<int, std::map<std::string, std::string>>>();
  auto key_shares = std::make_shared<std::map<int, std::map<std::string, std::string>>>();
  for (int index : input.survivors) (*self_shares)[index] = revealed_for(names[index], true);
  for (int index : input.dropped) (*key_shares)[index] = revealed_for(names[index], false);
  input.secrets.self_seed = [=](int survivor) -> absl::StatusOr<std::string> {
    return Reconstruct(self_shares->at(survivor), t,
                       absl::StrCat("the self-mask seed of site '", names[survivor], "'"));
  };
  input.secrets.pairwise_seed = [=](int dropped, int survivor) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(std::string mask_key,
                     Reconstruct(key_shares->at(dropped), t,
                                 absl::StrCat("the mask key of site '", names[dropped], "'")));
    ASSIGN_OR_RETURN(std::string shared, secagg::AgreeSharedSecret(
                                             mask_key, ads.at(names[survivor]).mask_public_key()));
    return secagg::DerivePairwiseMaskSeed(shared, id);
  };
  return input;
}

}  // namespace fedmi
