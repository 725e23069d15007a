// A site's side of one secure-aggregation round (docs/secure-aggregation.md),
// without any transport: the caller feeds it the coordinator's messages in
// order and sends back what it returns.
//
//   Start -> Advertisement -> OnPeerKeys -> OnRelayedShares (one or more
//   bundles) -> MaskUpdate -> SignSurvivors -> OnUnmaskRequest (one or more)
//
// Each round attempt gets a fresh participant: fresh X25519 cipher and mask
// key pairs and a fresh 32-byte self-mask seed, all of which are wiped when it
// is destroyed. Everything it derives, seals or signs is bound to the
// attempt's RoundId (run, round, attempt, nonce) from the coordinator's
// signed admission.
//
// What the site holds the coordinator to (docs/secure-aggregation.md):
// parameters recomputed from the run spec and held to the site's SecAggFloor
// (secagg_transcript.h); peers whose certificates the project CA issued to
// sites; only sites the admission lists; and, before revealing any share, at
// least t survivor signatures over the very survivor set this site signed. The coordinator
// (coordinator/secagg_session.*) computes the same GraphSeed and NeighbourGraph from the same
// PeerKeys.
//
// Secret shares: a site's self seed b and mask private key s_sk are each
// Shamir-split with threshold params.threshold; the share for neighbour j has
// x-coordinate j + 1 (j = the neighbour's index in PeerKeys), so a share's x
// names its holder and is the same whatever the graph. The plaintext sealed
// for a neighbour is
//   u32 BE length of SerializeShare(b share) || SerializeShare(b share)
//   || SerializeShare(s_sk share).
//
// Masking: a site adds pairwise masks only towards the neighbours whose
// shares it received (a neighbour that dropped before sharing is left out, as
// in Bonawitz et al.; its s_sk could never be reconstructed). The coordinator
// knows the same set: the neighbours that sent it a ShareBundle.
//
// Not thread-safe (thread-compatible): one caller at a time. Failures are
// absl::Status values naming the problem; a failed call leaves the state as it
// was, except where a method says otherwise.
#ifndef FEDMI_COMMON_SECAGG_SECAGG_PARTICIPANT_H_
#define FEDMI_COMMON_SECAGG_SECAGG_PARTICIPANT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_transcript.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/secagg.pb.h"

namespace fedmi {
namespace secagg {

// How a site's masked update is weighted in the sum.
enum class Weighting {
  kByExamples,  // examples / params.max_examples, at most 1 (FedAvg)
  kUniform,     // 1 for every site (DP-FedAvg)
};

class SecAggParticipant {
 public:
  // Fresh X25519 cipher and mask key pairs and a fresh 32-byte self-mask seed
  // for the attempt `admission` admits this site to. PermissionDenied when the
  // admission fails VerifyAdmission or does not list `site`, when its params
  // are not what `settings` (the approved run spec's) give (CheckParams) or
  // fall below `floor`, or when `cert_pem` is not a site certificate for
  // `site` from `ca_pem` or does not belong to `key_pem`; InvalidArgument for
  // a bad site name or params the codec refuses. Certificates `revoked` (the
  // project CRL) lists are refused here and in OnPeerKeys: the coordinator's
  // admission, this site's own and every peer's.
  static absl::StatusOr<std::unique_ptr<SecAggParticipant>> Start(
      const v1::RoundAdmission& admission, const v1::SecAggSettings& settings,
      const SecAggFloor& floor, const std::string& site, const std::string& key_pem,
      const std::string& cert_pem, const std::string& ca_pem,
      const RevocationList& revoked = RevocationList());

  ~SecAggParticipant();
  SecAggParticipant(const SecAggParticipant&) = delete;
  SecAggParticipant& operator=(const SecAggParticipant&) = delete;

  // This site's signed advertisement; certificate_pem is left empty (the
  // coordinator fills it from the TLS peer certificate).
  absl::StatusOr<v1::KeyAdvertisement> Advertisement() const;

  // Verifies every advertisement (VerifyAdvertisement), that each site is
  // admitted, that they are sorted by site without duplicates, that
  // graph_seed == GraphSeed(sites) and that this site's own advertisement is
  // unaltered; finds this site's index, builds NeighbourGraph(n,
  // params.neighbours, graph_seed) and returns one EncryptedShare per
  // neighbour (see the file comment). PermissionDenied naming the site for a
  // bad or unadmitted advertisement; InvalidArgument for the wrong attempt,
  // unsorted or duplicate sites, a wrong graph seed or params that differ
  // from Start's; FailedPrecondition if fewer than params.threshold sites
  // advertised, this site is missing, the graph actually built gives this
  // site fewer neighbours than its floor (CheckFloor), or it was already
  // called.
  absl::StatusOr<v1::ShareBundle> OnPeerKeys(const v1::PeerKeys& peers);

  // Decrypts and keeps the shares neighbours sent this site; may be called
  // with several bundles. All-or-nothing: on error nothing is kept.
  // DataLoss naming the sender for a share that fails authentication ("secret
  // share from site 'site-2' failed authentication") or does not parse;
  // PermissionDenied for a sender that is not a neighbour or a share addressed
  // to another site; InvalidArgument for the wrong run/round or a second
  // share from one sender; FailedPrecondition before OnPeerKeys.
  absl::Status OnRelayedShares(const v1::ShareBundle& bundle);

  // The masked, weighted, quantized delta of `local` against `global`
  // (MaskUpdateForSecAgg) with this site's index, the neighbours that sent
  // shares, their pairwise seeds (DerivePairwiseMaskSeed over the mask-key
  // agreement) and the self seed. FailedPrecondition before OnPeerKeys or if
  // fewer than params.threshold neighbours sent shares; InvalidArgument for
  // examples < 1 and whatever MaskUpdateForSecAgg refuses.
  // With Weighting::kUniform the weight is 1 whatever the example count
  // (site-level differential privacy).
  absl::StatusOr<TensorBundle> MaskUpdate(const TensorBundle& global, const TensorBundle& local,
                                          int64_t examples,
                                          Weighting weighting = Weighting::kByExamples) const;

  // examples / params.max_examples, clamped to at most 1; 0 for examples < 1
  // (which MaskUpdate refuses).
  double Weight(int64_t examples) const;

  // The consistency check: signs (attempt, graph seed, survivors) with this
  // site's certificate key. Signs at most one set per attempt: asked again
  // with a different set it refuses with PermissionDenied. InvalidArgument for
  // the wrong attempt, an unsorted set or a site that did not advertise;
  // PermissionDenied for a set without this site; FailedPrecondition before
  // OnPeerKeys;
  // PermissionDenied for fewer than threshold + 1 survivors.
  absl::StatusOr<v1::SurvivorSignature> SignSurvivors(const v1::SurvivorSet& set);

  // Reveals the shares this site holds: of the self seed of each survivor and
  // of the mask key of each dropped site (sites whose shares it does not hold
  // are skipped). PermissionDenied unless this site signed the survivor set
  // and the request names exactly that set and carries at least t valid
  // signatures over it by distinct survivors (each checked against the
  // certificate of that site's advertisement); PermissionDenied naming the
  // site if it asks for the other secret of a site already revealed the other
  // way (never both b and s_sk of one site). InvalidArgument for the wrong
  // attempt, an unknown site, a site in both lists or this site listed as
  // dropped; FailedPrecondition before OnPeerKeys. All-or-nothing: a refused
  // request reveals nothing.
  absl::StatusOr<v1::UnmaskResponse> OnUnmaskRequest(const v1::UnmaskRequest& request);

  // Valid after OnPeerKeys: this site's index in sites(), its neighbours in
  // the graph, and the sites sorted as in PeerKeys.
  int index() const { return index_; }
  const RoundId& round_id() const { return id_; }
  const std::vector<int>& neighbours() const { return neighbours_; }
  const std::vector<std::string>& sites() const { return sites_; }
  // The neighbours whose shares arrived (those MaskUpdate masks towards), sorted.
  std::vector<int> SharingNeighbours() const;

 private:
  struct HeldShares {
    std::string self_seed_share;  // SerializeShare
    std::string mask_key_share;   // SerializeShare
  };
  enum class Revealed { kSelfSeed, kMaskKey };

  SecAggParticipant(RoundId id, std::string site, v1::SecAggParams params, SecAggFloor floor,
                    FixedPointCodec codec, std::string ca_pem)
      : id_(std::move(id)),
        site_(std::move(site)),
        params_(std::move(params)),
        floor_(floor),
        codec_(codec),
        ca_pem_(std::move(ca_pem)) {}

  absl::Status CheckConsistency(const v1::UnmaskRequest& request) const;

  const RoundId id_;
  const std::string site_;
  const v1::SecAggParams params_;
  const SecAggFloor floor_;
  const FixedPointCodec codec_;
  const std::string ca_pem_;
  RevocationList revoked_;
  std::vector<std::string> admitted_;  // sorted, from the admission
  std::string key_pem_;                // signs the survivor set; wiped

  KeyPair cipher_keys_;
  KeyPair mask_keys_;
  std::string self_seed_;
  v1::KeyAdvertisement advertisement_;

  // Set by OnPeerKeys.
  bool have_peers_ = false;
  int index_ = -1;
  std::vector<std::string> sites_;
  std::vector<int> neighbours_;
  std::vector<std::string> mask_public_keys_;    // by index
  std::vector<std::string> cipher_public_keys_;  // by index
  std::vector<std::string> certificates_;        // by index, verified
  std::string graph_seed_;
  std::optional<std::vector<std::string>> signed_survivors_;

  std::map<int, HeldShares> held_;    // by sender index
  std::map<int, Revealed> revealed_;  // by owner index
};

}  // namespace secagg
}  // namespace fedmi

#endif  // FEDMI_COMMON_SECAGG_SECAGG_PARTICIPANT_H_
