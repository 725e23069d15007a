#include "common/secagg/secagg_participant.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/secagg/secagg_bundle.h"
#include "common/secagg/secagg_transcript.h"

namespace fedmi {
namespace secagg {
namespace {

void Wipe(std::string* secret) {
  if (!secret->empty()) OPENSSL_cleanse(&(*secret)[0], secret->size());
  secret->clear();
}

std::string U32Be(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  return out;
}

std::string AttemptName(int64_t run_id, int32_t round, int32_t attempt) {
  return absl::StrCat("run ", run_id, " round ", round, " attempt ", attempt);
}
std::string AttemptName(const RoundId& id) { return AttemptName(id.run_id, id.round, id.attempt); }

bool SameParams(const v1::SecAggParams& a, const v1::SecAggParams& b) {
  return a.threshold() == b.threshold() && a.neighbours() == b.neighbours() &&
         a.clip() == b.clip() && a.max_sites() == b.max_sites() &&
         a.max_examples() == b.max_examples();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggParticipant>> SecAggParticipant::Start(
    const v1::RoundAdmission& admission, const v1::SecAggSettings& settings,
    const SecAggFloor& floor, const std::string& site, const std::string& key_pem,
    const std::string& cert_pem, const std::string& ca_pem, const RevocationList& revoked) {
  RETURN_IF_ERROR(ValidatePartyName(site, "site name"));
  const absl::Time now = absl::Now();
  RETURN_IF_ERROR(VerifyAdmission(admission, ca_pem, now, &revoked));
  if (!std::binary_search(admission.sites().begin(), admission.sites().end(), site)) {
    return absl::PermissionDeniedError(
        absl::StrCat("secure aggregation admission does not list this site '", site, "'"));
  }
  const v1::SecAggParams& params = admission.params();
  RETURN_IF_ERROR(CheckParams(params, settings, admission.sites_size(), floor));
  QuantizationOptions options;
  options.clip = params.clip();
  options.max_sites = params.max_sites();
  ASSIGN_OR_RETURN(FixedPointCodec codec, FixedPointCodec::Create(options));

  absl::Status own_identity =
      VerifyPartyCertificate(cert_pem, ca_pem, site, PartyRole::kSite, now, &revoked);
  if (!own_identity.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate of site '", site, "' is not usable: ", own_identity.message()));
  }

  const RoundId id = RoundIdOf(admission);
  std::unique_ptr<SecAggParticipant> participant(
      new SecAggParticipant(id, site, params, floor, codec, ca_pem));
  participant->revoked_ = revoked;
  participant->admitted_.assign(admission.sites().begin(), admission.sites().end());
  participant->key_pem_ = key_pem;
  ASSIGN_OR_RETURN(participant->cipher_keys_, GenerateKeyPair());
  ASSIGN_OR_RETURN(participant->mask_keys_, GenerateKeyPair());
  participant->self_seed_.assign(kKeySize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&participant->self_seed_[0]),
                 static_cast<int>(kKeySize)) != 1) {
    return absl::InternalError("RAND_bytes failed to draw the self-mask seed");
  }

  v1::KeyAdvertisement& ad = participant->advertisement_;
  ad.set_run_id(id.run_id);
  ad.set_round(id.round);
  ad.set_attempt(id.attempt);
  ad.set_nonce(id.nonce);
  ad.set_site(site);
  ad.set_cipher_public_key(participant->cipher_keys_.public_key);
  ad.set_mask_public_key(participant->mask_keys_.public_key);
  ASSIGN_OR_RETURN(
      std::string signature,
      SignKeyAdvertisement(key_pem, id, site, ad.cipher_public_key(), ad.mask_public_key()));
  ad.set_signature(std::move(signature));
  // Catches a key that does not belong to the certificate here rather than
  // as a refusal from every peer.
  absl::Status own = VerifyKeyAdvertisement(cert_pem, id, site, ad.cipher_public_key(),
                                            ad.mask_public_key(), ad.signature());
  if (!own.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("key and certificate of site '", site,
                     "' do not make a valid advertisement: ", own.message()));
  }
  return participant;
}

SecAggParticipant::~SecAggParticipant() {
  Wipe(&cipher_keys_.private_key);
  Wipe(&mask_keys_.private_key);
  Wipe(&self_seed_);
  Wipe(&key_pem_);
  for (auto& [sender, shares] : held_) {
    Wipe(&shares.self_seed_share);
    Wipe(&shares.mask_key_share);
  }
}

absl::StatusOr<v1::KeyAdvertisement> SecAggParticipant::Advertisement() const {
  return advertisement_;
}

absl::StatusOr<v1::ShareBundle> SecAggParticipant::OnPeerKeys(const v1::PeerKeys& peers) {
  if (have_peers_) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site_, "' already received the peer keys of this round"));
  }
  if (peers.run_id() != id_.run_id || peers.round() != id_.round ||
      peers.attempt() != id_.attempt) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peer keys are for ", AttemptName(peers.run_id(), peers.round(), peers.attempt()),
        ", expected ", AttemptName(id_)));
  }
  if (peers.has_params() && !SameParams(peers.params(), params_)) {
    return absl::InvalidArgumentError(
        "peer keys carry secure-aggregation params that differ from the round's");
  }
  const int n = peers.sites_size();
  if (n < params_.threshold()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only ", n, " sites advertised keys, fewer than the threshold ", params_.threshold()));
  }
  std::vector<v1::KeyAdvertisement> ads(peers.sites().begin(), peers.sites().end());
  int index = -1;
  const absl::Time now = absl::Now();
  for (int i = 0; i < n; ++i) {
    if (i > 0 && !(ads[i - 1].site() < ads[i].site())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "peer keys are not sorted by site without duplicates at '", ads[i].site(), "'"));
    }
    RETURN_IF_ERROR(VerifyAdvertisement(ads[i], id_, ca_pem_, now, &revoked_));
    if (!std::binary_search(admitted_.begin(), admitted_.end(), ads[i].site())) {
      return absl::PermissionDeniedError(absl::StrCat("key advertisement of site '", ads[i].site(),
                                                      "', which the coordinator's admission of ",
                                                      AttemptName(id_), " does not list"));
    }
    if (ads[i].site() == site_) {
      if (ads[i].cipher_public_key() != cipher_keys_.public_key ||
          ads[i].mask_public_key() != mask_keys_.public_key) {
        return absl::PermissionDeniedError(absl::StrCat(
            "key advertisement of site '", site_, "' (this site) was replaced in the peer keys"));
      }
      index = i;
    }
  }
  if (index < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site_, "' is missing from the peer keys"));
  }
  const std::string seed = GraphSeed(ads);
  if (peers.graph_seed() != seed) {
    return absl::InvalidArgumentError(
        "graph seed of the peer keys is not the hash of the advertisements");
  }
  ASSIGN_OR_RETURN(std::vector<std::vector<int>> graph,
                   NeighbourGraph(n, params_.neighbours(), seed));
  const std::vector<int>& neighbours = graph[index];
  // Fewer sites advertised than were admitted, so the graph actually built
  // may be smaller than the one the parameters were checked against.
  if (absl::Status floor =
          CheckFloor(params_.threshold(), static_cast<int>(neighbours.size()), floor_);
      !floor.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site_, "' has ", neighbours.size(),
                                                      " neighbours in ", AttemptName(id_), ": ",
                                                      floor.message()));
  }

  // Shares with x = 1..n, so that neighbour j gets the share at x = j + 1.
  ASSIGN_OR_RETURN(std::vector<Share> seed_shares, ShamirSplit(self_seed_, params_.threshold(), n));
  ASSIGN_OR_RETURN(std::vector<Share> key_shares,
                   ShamirSplit(mask_keys_.private_key, params_.threshold(), n));

  v1::ShareBundle bundle;
  bundle.set_run_id(id_.run_id);
  bundle.set_round(id_.round);
  bundle.set_attempt(id_.attempt);
  for (int j : neighbours) {
    const std::string& peer = ads[j].site();
    ASSIGN_OR_RETURN(std::string secret,
                     AgreeSharedSecret(cipher_keys_.private_key, ads[j].cipher_public_key()));
    absl::StatusOr<std::string> key = DeriveShareKey(secret, id_, site_, peer);
    Wipe(&secret);
    if (!key.ok()) return key.status();
    std::string seed_share = SerializeShare(seed_shares[j]);
    std::string plaintext = U32Be(static_cast<uint32_t>(seed_share.size())) + seed_share +
                            SerializeShare(key_shares[j]);
    absl::StatusOr<std::string> sealed =
        Seal(*key, plaintext, ShareAssociatedData(id_, site_, peer));
    Wipe(&seed_share);
    Wipe(&plaintext);
    Wipe(&*key);
    if (!sealed.ok()) return sealed.status();
    v1::EncryptedShare* share = bundle.add_shares();
    share->set_sender(site_);
    share->set_recipient(peer);
    share->set_ciphertext(std::move(*sealed));
  }
  for (Share& share : seed_shares) Wipe(&share.y);
  for (Share& share : key_shares) Wipe(&share.y);

  have_peers_ = true;
  index_ = index;
  sites_.clear();
  mask_public_keys_.clear();
  cipher_public_keys_.clear();
  for (const v1::KeyAdvertisement& ad : ads) {
    sites_.push_back(ad.site());
    mask_public_keys_.push_back(ad.mask_public_key());
    cipher_public_keys_.push_back(ad.cipher_public_key());
  }
  neighbours_ = neighbours;
  certificates_.clear();
  for (const v1::KeyAdvertisement& ad : ads) certificates_.push_back(ad.certificate_pem());
  graph_seed_ = seed;
  return bundle;
}

absl::Status SecAggParticipant::OnRelayedShares(const v1::ShareBundle& bundle) {
  if (!have_peers_) {
    return absl::FailedPreconditionError("secret shares arrived before the peer keys");
  }
  if (bundle.run_id() != id_.run_id || bundle.round() != id_.round ||
      bundle.attempt() != id_.attempt) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secret shares are for ", AttemptName(bundle.run_id(), bundle.round(), bundle.attempt()),
        ", expected ", AttemptName(id_)));
  }
  std::map<int, HeldShares> incoming;
  auto wipe_incoming = [&incoming] {
    for (auto& [sender, shares] : incoming) {
      Wipe(&shares.self_seed_share);
      Wipe(&shares.mask_key_share);
    }
  };
  for (const v1::EncryptedShare& share : bundle.shares()) {
    const std::string& sender = share.sender();
    if (share.recipient() != site_) {
      wipe_incoming();
      return absl::PermissionDeniedError(absl::StrCat("secret share from site '", sender,
                                                      "' is addressed to '", share.recipient(),
                                                      "', not to '", site_, "'"));
    }
    auto it = std::lower_bound(sites_.begin(), sites_.end(), sender);
    const int j =
        (it != sites_.end() && *it == sender) ? static_cast<int>(it - sites_.begin()) : -1;
    if (j < 0 || !std::binary_search(neighbours_.begin(), neighbours_.end(), j)) {
      wipe_incoming();
      return absl::PermissionDeniedError(absl::StrCat(
          "secret share from site '", sender, "', which is not a neighbour of '", site_, "'"));
    }
    if (held_.count(j) > 0 || incoming.count(j) > 0) {
      wipe_incoming();
      return absl::InvalidArgumentError(
          absl::StrCat("second secret share from site '", sender, "'"));
    }
    absl::StatusOr<std::string> plaintext;
    {
      absl::StatusOr<std::string> secret =
          AgreeSharedSecret(cipher_keys_.private_key, cipher_public_keys_[j]);
      if (!secret.ok()) {
        wipe_incoming();
        return secret.status();
      }
      absl::StatusOr<std::string> key = DeriveShareKey(*secret, id_, sender, site_);
      Wipe(&*secret);
      if (!key.ok()) {
        wipe_incoming();
        return key.status();
      }
      plaintext = Open(*key, share.ciphertext(), ShareAssociatedData(id_, sender, site_));
      Wipe(&*key);
    }
    if (!plaintext.ok()) {
      wipe_incoming();
      if (plaintext.status().code() == absl::StatusCode::kDataLoss) {
        return absl::DataLossError(
            absl::StrCat("secret share from site '", sender, "' failed authentication"));
      }
      return plaintext.status();
    }
    // Parse: u32 BE length || b share || s_sk share; both must be shares of
    // 32-byte secrets at this site's x.
    const std::string& p = *plaintext;
    auto malformed = [&](const std::string& why) {
      wipe_incoming();
      return absl::DataLossError(
          absl::StrCat("secret share from site '", sender, "' is malformed: ", why));
    };
    if (p.size() < 4) {
      Wipe(&*plaintext);
      return malformed("too short");
    }
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(p[i]);
    if (len > p.size() - 4) {
      Wipe(&*plaintext);
      return malformed("bad length prefix");
    }
    absl::StatusOr<Share> seed_share = ParseShare(p.substr(4, len));
    absl::StatusOr<Share> key_share = ParseShare(p.substr(4 + len));
    Wipe(&*plaintext);
    if (!seed_share.ok() || !key_share.ok()) return malformed("a share does not parse");
    if (seed_share->x != index_ + 1 || key_share->x != index_ + 1 ||
        seed_share->secret_size != kKeySize || key_share->secret_size != kKeySize) {
      Wipe(&seed_share->y);
      Wipe(&key_share->y);
      return malformed("not a share of a 32-byte secret for this site");
    }
    HeldShares& held = incoming[j];
    held.self_seed_share = SerializeShare(*seed_share);
    held.mask_key_share = SerializeShare(*key_share);
    Wipe(&seed_share->y);
    Wipe(&key_share->y);
  }
  for (auto& [sender, shares] : incoming) held_[sender] = std::move(shares);
  return absl::OkStatus();
}

std::vector<int> SecAggParticipant::SharingNeighbours() const {
  std::vector<int> out;
  for (const auto& [sender, shares] : held_) out.push_back(sender);
  return out;
}

double SecAggParticipant::Weight(int64_t examples) const {
  if (examples < 1) return 0.0;
  return std::min(1.0, static_cast<double>(examples) / static_cast<double>(params_.max_examples()));
}

absl::StatusOr<TensorBundle> SecAggParticipant::MaskUpdate(const TensorBundle& global,
                                                           const TensorBundle& local,
                                                           int64_t examples,
                                                           Weighting weighting) const {
  if (!have_peers_) {
    return absl::FailedPreconditionError("cannot mask an update before the peer keys");
  }
  if (examples < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a masked update needs a positive example count, got ", examples));
  }
  if (static_cast<int>(held_.size()) < params_.threshold()) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", site_, "' holds secret shares from ", held_.size(),
                     " neighbours, fewer than the threshold ", params_.threshold()));
  }
  const std::vector<int> sharing = SharingNeighbours();
  PairwiseSeedFn pairwise_seed = [this](int peer) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(std::string secret,
                     AgreeSharedSecret(mask_keys_.private_key, mask_public_keys_[peer]));
    absl::StatusOr<std::string> seed = DerivePairwiseMaskSeed(secret, id_);
    Wipe(&secret);
    return seed;
  };
  const double weight = weighting == Weighting::kUniform ? 1.0 : Weight(examples);
  return MaskUpdateForSecAgg(global, local, weight, codec_, index_, sharing, pairwise_seed,
                             self_seed_);
}

absl::StatusOr<v1::UnmaskResponse> SecAggParticipant::OnUnmaskRequest(
    const v1::UnmaskRequest& request) {
  if (!have_peers_) {
    return absl::FailedPreconditionError("unmask request arrived before the peer keys");
  }
  if (request.run_id() != id_.run_id || request.round() != id_.round ||
      request.attempt() != id_.attempt) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unmask request is for ", AttemptName(request.run_id(), request.round(), request.attempt()),
        ", expected ", AttemptName(id_)));
  }
  RETURN_IF_ERROR(CheckConsistency(request));
  auto index_of = [this](const std::string& site) -> absl::StatusOr<int> {
    auto it = std::lower_bound(sites_.begin(), sites_.end(), site);
    if (it == sites_.end() || *it != site) {
      return absl::InvalidArgumentError(
          absl::StrCat("unmask request names site '", site, "', which did not advertise keys"));
    }
    return static_cast<int>(it - sites_.begin());
  };
  std::map<int, Revealed> wanted;
  for (const std::string& site : request.survivors()) {
    ASSIGN_OR_RETURN(int i, index_of(site));
    wanted[i] = Revealed::kSelfSeed;
  }
  for (const std::string& site : request.dropped()) {
    ASSIGN_OR_RETURN(int i, index_of(site));
    if (i == index_) {
      return absl::InvalidArgumentError(
          absl::StrCat("unmask request lists this site '", site_, "' as dropped"));
    }
    auto it = wanted.find(i);
    if (it != wanted.end() && it->second == Revealed::kSelfSeed) {
      return absl::InvalidArgumentError(
          absl::StrCat("unmask request lists site '", site, "' both as a survivor and as dropped"));
    }
    wanted[i] = Revealed::kMaskKey;
  }
  for (const auto& [owner, kind] : wanted) {
    auto it = revealed_.find(owner);
    if (it != revealed_.end() && it->second != kind) {
      return absl::PermissionDeniedError(absl::StrCat(
          "refusing to reveal the ", kind == Revealed::kSelfSeed ? "self-mask seed" : "mask key",
          " share of site '", sites_[owner], "': its ",
          kind == Revealed::kSelfSeed ? "mask key" : "self-mask seed",
          " share was already revealed, and both would unmask its update"));
    }
  }

  v1::UnmaskResponse response;
  response.set_run_id(id_.run_id);
  response.set_round(id_.round);
  response.set_attempt(id_.attempt);
  for (const auto& [owner, kind] : wanted) {
    auto held = held_.find(owner);
    if (held == held_.end()) continue;  // not a neighbour, or it never sent shares
    v1::RevealedShare* share = response.add_shares();
    share->set_owner(sites_[owner]);
    share->set_self_seed(kind == Revealed::kSelfSeed);
    share->set_share(kind == Revealed::kSelfSeed ? held->second.self_seed_share
                                                 : held->second.mask_key_share);
    revealed_[owner] = kind;
  }
  return response;
}

absl::StatusOr<v1::SurvivorSignature> SecAggParticipant::SignSurvivors(const v1::SurvivorSet& set) {
  if (!have_peers_) {
    return absl::FailedPreconditionError("survivor set arrived before the peer keys");
  }
  if (set.run_id() != id_.run_id || set.round() != id_.round || set.attempt() != id_.attempt) {
    return absl::InvalidArgumentError(
        absl::StrCat("survivor set is for ", AttemptName(set.run_id(), set.round(), set.attempt()),
                     ", expected ", AttemptName(id_)));
  }
  std::vector<std::string> survivors(set.survivors().begin(), set.survivors().end());
  for (size_t i = 0; i < survivors.size(); ++i) {
    if (i > 0 && !(survivors[i - 1] < survivors[i])) {
      return absl::InvalidArgumentError("survivor set is not sorted without duplicates");
    }
    if (!std::binary_search(sites_.begin(), sites_.end(), survivors[i])) {
      return absl::InvalidArgumentError(absl::StrCat("survivor set names site '", survivors[i],
                                                     "', which did not advertise keys"));
    }
  }
  if (!std::binary_search(survivors.begin(), survivors.end(), site_)) {
    // Only sites that uploaded are asked; leaving this one out would hide
    // its input from the sum while its neighbours reveal its mask key.
    return absl::PermissionDeniedError(
        absl::StrCat("survivor set leaves out this site '", site_, "', which uploaded"));
  }
  // Each survivor's seed is rebuilt from t shares held by the others: a set
  // of t or fewer can only be unmasked with shares from sites outside it,
  // which is how a lying coordinator would isolate one site's update.
  if (static_cast<int>(survivors.size()) < params_.threshold() + 1) {
    return absl::PermissionDeniedError(
        absl::StrCat("survivor set names ", survivors.size(),
                     " sites; unmasking needs at least threshold + 1 = ", params_.threshold() + 1));
  }
  if (signed_survivors_.has_value() && *signed_survivors_ != survivors) {
    return absl::PermissionDeniedError(absl::StrCat(
        "refusing to sign a second, different survivor set for ", AttemptName(id_),
        ": the coordinator would be telling sites different stories about who dropped"));
  }
  ASSIGN_OR_RETURN(std::string signature,
                   SignWithKeyPem(key_pem_, SurvivorSetBytes(id_, graph_seed_, survivors)));
  signed_survivors_ = std::move(survivors);
  v1::SurvivorSignature out;
  out.set_run_id(id_.run_id);
  out.set_round(id_.round);
  out.set_attempt(id_.attempt);
  out.set_site(site_);
  out.set_signature(std::move(signature));
  return out;
}

absl::Status SecAggParticipant::CheckConsistency(const v1::UnmaskRequest& request) const {
  if (!signed_survivors_.has_value()) {
    return absl::PermissionDeniedError(absl::StrCat("unmask request for ", AttemptName(id_),
                                                    " before this site signed the survivor set"));
  }
  const std::vector<std::string> survivors(request.survivors().begin(), request.survivors().end());
  if (survivors != *signed_survivors_) {
    return absl::PermissionDeniedError(absl::StrCat(
        "unmask request names ", survivors.size(), " survivors, not the ",
        signed_survivors_->size(), " this site signed: the coordinator's story changed"));
  }
  const std::string bytes = SurvivorSetBytes(id_, graph_seed_, survivors);
  std::set<std::string> signers;
  std::string first_problem;
  for (const v1::SurvivorSignature& signature : request.signatures()) {
    const std::string& signer = signature.site();
    absl::Status valid = [&]() -> absl::Status {
      if (!std::binary_search(survivors.begin(), survivors.end(), signer)) {
        return absl::PermissionDeniedError("is not a survivor");
      }
      auto it = std::lower_bound(sites_.begin(), sites_.end(), signer);
      // Its certificate is the one its advertisement was verified with.
      return VerifyWithCertificatePem(certificates_[it - sites_.begin()], bytes,
                                      signature.signature());
    }();
    if (valid.ok()) {
      signers.insert(signer);
    } else if (first_problem.empty()) {
      first_problem = absl::StrCat(" (the signature of '", signer, "' ", valid.message(), ")");
    }
  }
  if (static_cast<int>(signers.size()) < params_.threshold()) {
    return absl::PermissionDeniedError(
        absl::StrCat("unmask request carries ", signers.size(),
                     " valid survivor signatures over the set this site signed, fewer than the "
                     "threshold ",
                     params_.threshold(), first_problem));
  }
  return absl::OkStatus();
}

}  // namespace secagg
}  // namespace fedmi
