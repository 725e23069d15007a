// SecAggSession: the coordinator's bookkeeping for one secure-aggregation
// round, transport-free. It checks and collects key advertisements, fixes
// who takes part at each step, routes sealed shares without being able to
// read them, and finally rebuilds from the survivors' revealed shares the
// secrets that SecAggAggregator::Finish needs to unmask the sum.
//
// Steps and the site sets of Bonawitz et al.: U1 advertised keys, U2 also
// sent shares, U3 also uploaded a masked update, U4 also signed the survivor
// set (U3) in the consistency check; only U4 is asked to reveal shares, and
// the request carries their signatures, which every site checks. Sites mask only with
// neighbours in U2 (they learn U2 from the shares relayed to them), so the
// graph used for unmasking is the neighbour graph restricted to U2.
//
// Not thread-safe: the RoundManager serialises calls.
#ifndef FEDMI_COORDINATOR_SECAGG_SESSION_H_
#define FEDMI_COORDINATOR_SECAGG_SESSION_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/secagg/secagg.h"
#include "coordinator/secagg_aggregator.h"
#include "fedmi/v1/secagg.pb.h"

namespace fedmi {

class SecAggSession {
 public:
  // `selected`: the round's sites. InvalidArgument for a threshold below 2
  // or above the neighbour count, or fewer selected sites than the threshold.
  static absl::StatusOr<std::unique_ptr<SecAggSession>> Create(secagg::RoundId id,
                                                               const v1::SecAggParams& params,
                                                               std::vector<std::string> selected,
                                                               std::string ca_pem);

  // Step 1. `certificate_pem` is the sender's TLS peer certificate: the
  // advertisement must be signed by it. PermissionDenied naming the site for
  // a forged or misattributed advertisement.
  absl::Status OnAdvertisement(const std::string& site, v1::KeyAdvertisement ad,
                               const std::string& certificate_pem);
  bool AllAdvertised() const;
  // Ends step 1: the advertisements to send to every site of U1.
  // FailedPrecondition naming the counts when fewer than t advertised.
  absl::StatusOr<v1::PeerKeys> ClosePeerKeys();

  // Step 2. Each share must come from `site`, go to one of its neighbours,
  // and appear once.
  absl::Status OnShares(const std::string& site, const v1::ShareBundle& bundle);
  bool AllShared() const;
  // Ends step 2: per recipient in U2, the shares addressed to it by sites of
  // U2. FailedPrecondition when fewer than t sites shared.
  absl::StatusOr<std::map<std::string, v1::ShareBundle>> CloseSharing();
  // Whether a masked update from `site` belongs in the sum (it is in U2).
  bool MayUpload(const std::string& site) const;

  // Step 3, once uploads are closed: survivors = `uploaded`, dropped = U2
  // minus them. Returns the set every survivor is asked to sign.
  // FailedPrecondition for fewer survivors than t + 1 (each survivor's seed
  // is rebuilt from t shares held by the others).
  absl::StatusOr<v1::SurvivorSet> CloseUploads(const std::set<std::string>& uploaded);

  // Step 4, the consistency check: a survivor's signature over the survivor
  // set, checked against the certificate of its advertisement.
  // PermissionDenied for a bad signature (it is not counted).
  absl::Status OnSurvivorSignature(const std::string& site, const v1::SurvivorSignature& signature);
  // Ends step 4: the unmask request for the signers (U4), carrying their
  // signatures. FailedPrecondition when fewer than t survivors signed.
  absl::StatusOr<v1::UnmaskRequest> CloseConsistency();
  const std::set<std::string>& signers() const { return signers_; }

  // Step 5: shares revealed by a signer.
  absl::Status OnUnmaskResponse(const std::string& site, const v1::UnmaskResponse& response);
  // Everything SecAggAggregator::Finish needs. FailedPrecondition naming the
  // first site whose secret has fewer than t revealed shares; DataLoss when
  // shares do not agree.
  absl::StatusOr<UnmaskingInput> Unmasking() const;

  const std::vector<std::string>& advertised() const { return advertised_; }
  std::set<std::string> shared() const;
  int IndexOf(const std::string& site) const;  // in PeerKeys order; -1 if absent

 private:
  SecAggSession() = default;

  secagg::RoundId id_;
  int32_t round_ = 0;  // id_.round, for messages
  v1::SecAggParams params_;
  std::set<std::string> selected_;
  std::string ca_pem_;
  std::map<std::string, v1::KeyAdvertisement> ads_;
  std::vector<std::string> advertised_;  // U1, sorted; graph index = position
  std::vector<std::vector<int>> graph_;
  bool peer_keys_closed_ = false;
  std::map<std::string, v1::ShareBundle> shares_by_sender_;
  bool sharing_closed_ = false;
  std::set<std::string> u2_;
  std::set<std::string> survivors_;
  std::set<std::string> dropped_;
  bool uploads_closed_ = false;
  std::string graph_seed_;
  std::map<std::string, v1::SurvivorSignature> signatures_;  // by survivor
  std::set<std::string> signers_;                            // U4, once closed
  bool consistency_closed_ = false;
  // owner -> (is self seed) -> revealed serialized shares, one per revealer
  std::map<std::pair<std::string, bool>, std::map<std::string, std::string>> revealed_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SECAGG_SESSION_H_
