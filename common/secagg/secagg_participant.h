// A site's side of one secure-aggregation round (docs/secure-aggregation.md),
// without any transport: the caller feeds it the coordinator's messages in
// order and sends back what it returns.
//
//   Start -> Advertisement -> OnPeerKeys -> OnRelayedShares (one or more
//   bundles) -> MaskUpdate -> OnUnmaskRequest (one or more requests)
//
// Each round gets a fresh participant: fresh X25519 cipher and mask key pairs
// and a fresh 32-byte self-mask seed, all of which are wiped when it is
// destroyed. The coordinator (coordinator/secagg_session.*) computes the same
// GraphSeed and NeighbourGraph from the same PeerKeys.
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
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/secagg/secagg.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/secagg.pb.h"

namespace fedmi {
namespace secagg {

// The graph seed both sides compute: SHA-256 over the concatenated
// KeyAdvertisementBytes(...) of every advertisement, in PeerKeys order (the
// encoding is self-delimiting, so the concatenation is unambiguous).
std::string GraphSeed(const std::vector<v1::KeyAdvertisement>& sorted_ads);

// OK if `ad` is for `run_id`/`round`, carries 32-byte keys and a certificate
// issued by the project CA in `ca_pem` (valid at `now`) whose CN is ad.site,
// and its signature over KeyAdvertisementBytes verifies. PermissionDenied
// naming the site and the reason otherwise ("key advertisement of site
// 'site-3' has a bad signature").
absl::Status VerifyAdvertisement(const v1::KeyAdvertisement& ad, int64_t run_id, int32_t round,
                                 const std::string& ca_pem, absl::Time now = absl::Now());

class SecAggParticipant {
 public:
  // Fresh X25519 cipher and mask key pairs and a fresh 32-byte self-mask seed
  // for this round. InvalidArgument for bad params (threshold or neighbours
  // < 1, max_examples < 1, clip or max_sites the codec refuses) or a bad site
  // name; PermissionDenied if `cert_pem` is not issued by `ca_pem`, is not
  // for `site`, or does not belong to `key_pem`.
  static absl::StatusOr<std::unique_ptr<SecAggParticipant>> Start(
      int64_t run_id, int32_t round, const std::string& site, const v1::SecAggParams& params,
      const std::string& key_pem, const std::string& cert_pem, const std::string& ca_pem);

  ~SecAggParticipant();
  SecAggParticipant(const SecAggParticipant&) = delete;
  SecAggParticipant& operator=(const SecAggParticipant&) = delete;

  // This site's signed advertisement; certificate_pem is left empty (the
  // coordinator fills it from the TLS peer certificate).
  absl::StatusOr<v1::KeyAdvertisement> Advertisement() const;

  // Verifies every advertisement (VerifyAdvertisement), that they are sorted
  // by site without duplicates, that graph_seed == GraphSeed(sites) and that
  // this site's own advertisement is unaltered; finds this site's index,
  // builds NeighbourGraph(n, params.neighbours, graph_seed) and returns one
  // EncryptedShare per neighbour (see the file comment).
  // PermissionDenied naming the site for a bad advertisement;
  // InvalidArgument for the wrong run/round, unsorted or duplicate sites, a
  // wrong graph seed or params that differ from Start's; FailedPrecondition
  // if fewer than params.threshold sites advertised, this site is missing,
  // this site has fewer neighbours than params.threshold (its secrets could
  // never be reconstructed), or it was already called.
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
  absl::StatusOr<TensorBundle> MaskUpdate(const TensorBundle& global, const TensorBundle& local,
                                          int64_t examples) const;

  // examples / params.max_examples, clamped to at most 1; 0 for examples < 1
  // (which MaskUpdate refuses).
  double Weight(int64_t examples) const;

  // Reveals the shares this site holds: of the self seed of each survivor and
  // of the mask key of each dropped site (sites whose shares it does not hold
  // are skipped). InvalidArgument for the wrong run/round, an unknown site, a
  // site in both lists or this site listed as dropped; PermissionDenied naming
  // the site if it asks for the other secret of a site already revealed the
  // other way (never both b and s_sk of one site); FailedPrecondition before
  // OnPeerKeys. All-or-nothing: a refused request reveals nothing.
  absl::StatusOr<v1::UnmaskResponse> OnUnmaskRequest(const v1::UnmaskRequest& request);

  // Valid after OnPeerKeys: this site's index in sites(), its neighbours in
  // the graph, and the sites sorted as in PeerKeys.
  int index() const { return index_; }
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

  SecAggParticipant(int64_t run_id, int32_t round, std::string site, v1::SecAggParams params,
                    FixedPointCodec codec, std::string ca_pem)
      : run_id_(run_id),
        round_(round),
        site_(std::move(site)),
        params_(std::move(params)),
        codec_(codec),
        ca_pem_(std::move(ca_pem)) {}

  const int64_t run_id_;
  const int32_t round_;
  const std::string site_;
  const v1::SecAggParams params_;
  const FixedPointCodec codec_;
  const std::string ca_pem_;

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

  std::map<int, HeldShares> held_;    // by sender index
  std::map<int, Revealed> revealed_;  // by owner index
};

}  // namespace secagg
}  // namespace fedmi

#endif  // FEDMI_COMMON_SECAGG_SECAGG_PARTICIPANT_H_
