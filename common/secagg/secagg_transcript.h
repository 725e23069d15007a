// What a site holds the coordinator to in a secure round, beyond the key
// advertisements (secagg.h): the rules that turn a run spec into a round's
// parameters, the site's own floor on them, the coordinator's signed
// admission of each attempt, and the survivors' signed sets of the
// consistency check (Bonawitz et al. 2017, round 4).
//
// The coordinator computes a round's parameters with ResolveParams; a site
// recomputes them from the spec it approved (CheckParams), so a coordinator
// cannot lower the threshold or shrink the neighbourhood of one round below
// what the run's spec and the site's policy allow. docs/secure-aggregation.md
// derives the guarantee from these numbers.
//
// Free functions, thread-safe. Errors name the problem; a refusal caused by
// the coordinator's own word (a bad admission, parameters off the spec) is
// PermissionDenied.
#ifndef FEDMI_COMMON_SECAGG_SECAGG_TRANSCRIPT_H_
#define FEDMI_COMMON_SECAGG_SECAGG_TRANSCRIPT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/crypto/revocation_list.h"
#include "common/secagg/secagg.h"
#include "fedmi/v1/secagg.pb.h"

namespace fedmi::secagg {

inline constexpr double kDefaultClip = 1.0;

// The number of neighbours every site has in NeighbourGraph(num_sites,
// neighbours): num_sites - 1 for the complete graph, neighbours + 1 when both
// are odd (the Harary graph rounds up), else neighbours.
int GraphDegree(int num_sites, int neighbours);

// 2 * degree / 3 + 1: the fewest shares that are more than two thirds of a
// site's neighbours.
int DefaultThreshold(int degree);

// A round's parameters for `num_sites` admitted sites from the run's
// settings (0 fields take defaults): neighbours = GraphDegree of the
// requested k (every other site when unset), threshold = settings' or
// DefaultThreshold(neighbours), clip = settings' or kDefaultClip, max_sites =
// num_sites, max_examples = settings' or `largest_declared_examples`.
v1::SecAggParams ResolveParams(const v1::SecAggSettings& settings, int num_sites,
                               int64_t largest_declared_examples);

// What a site demands of any secure round, whatever the coordinator says.
struct SecAggFloor {
  // Fewest neighbours this site masks with and shares its secrets among.
  int min_peers = 3;
  // The threshold must exceed this fraction of a site's neighbours.
  double min_threshold_fraction = 2.0 / 3.0;
};

// OK when `threshold` shares out of `degree` neighbours meet `floor`: degree
// >= floor.min_peers, threshold >= 2, threshold > min_threshold_fraction *
// degree and threshold <= degree. PermissionDenied naming the numbers.
absl::Status CheckFloor(int threshold, int degree, const SecAggFloor& floor);

// OK when `params` are what ResolveParams gives for `settings` and
// `num_sites` (max_examples aside, which only scales weights) and meet
// `floor`. PermissionDenied naming the first parameter that differs.
absl::Status CheckParams(const v1::SecAggParams& params, const v1::SecAggSettings& settings,
                         int num_sites, const SecAggFloor& floor);

// --- The coordinator's admission of one attempt -----------------------------

RoundId RoundIdOf(const v1::RoundAdmission& admission);

// The signed bytes: tag "fedmi/secagg/admission/v1", RoundIdBytes, the
// admitted sites, then the parameters, all length-prefixed or fixed-width.
std::string AdmissionBytes(const v1::RoundAdmission& admission);

// Fills admission->signature and certificate_pem with the coordinator's TLS
// identity. InvalidArgument for a key that cannot sign.
absl::Status SignAdmission(const std::string& key_pem, const std::string& cert_pem,
                           v1::RoundAdmission* admission);

// OK if `admission` carries a certificate the project CA in `ca_pem` issued
// to a coordinator (VerifyPartyCertificate), a valid signature over
// AdmissionBytes, attempt >= 1, a 32-byte nonce, sorted distinct sites, and
// params.max_sites equal to the number of sites. PermissionDenied naming the
// problem otherwise, also when `revoked` (may be null: no CRL) lists the
// coordinator's certificate.
absl::Status VerifyAdmission(const v1::RoundAdmission& admission, const std::string& ca_pem,
                             absl::Time now, const RevocationList* revoked = nullptr);

// --- Key advertisements ----------------------------------------------------------

RoundId RoundIdOf(const v1::KeyAdvertisement& ad);

// The graph seed both sides compute: SHA-256 over the concatenated
// KeyAdvertisementBytes(...) of every advertisement, in PeerKeys order (the
// encoding is self-delimiting, so the concatenation is unambiguous).
std::string GraphSeed(const std::vector<v1::KeyAdvertisement>& sorted_ads);

// OK if `ad` is for the round attempt `id` (nonce included), carries 32-byte
// keys and a certificate the project CA in `ca_pem` issued to a site named
// ad.site with client-auth usage (VerifyPartyCertificate: a coordinator's,
// admin's or auditor's certificate is refused), and its signature over
// KeyAdvertisementBytes verifies. PermissionDenied naming the site and the
// reason otherwise ("key advertisement of site 'site-3' has a bad signature"),
// also when `revoked` (may be null: no CRL) lists the site's certificate.
absl::Status VerifyAdvertisement(const v1::KeyAdvertisement& ad, const RoundId& id,
                                 const std::string& ca_pem, absl::Time now,
                                 const RevocationList* revoked = nullptr);

// --- The consistency check ----------------------------------------------------

// The bytes a survivor signs: tag "fedmi/secagg/survivors/v1", RoundIdBytes,
// the graph seed of the peer keys it received (so that sites shown different
// peer keys never agree), and the sorted survivors.
std::string SurvivorSetBytes(const RoundId& id, const std::string& graph_seed,
                             const std::vector<std::string>& sorted_survivors);

}  // namespace fedmi::secagg

#endif  // FEDMI_COMMON_SECAGG_SECAGG_TRANSCRIPT_H_
