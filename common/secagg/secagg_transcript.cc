#include "common/secagg/secagg_transcript.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/secagg/secagg_internal.h"

namespace fedmi::secagg {
namespace {

// Doubles as their IEEE-754 bits, so that the signed bytes do not depend on
// how a number prints.
void AppendDouble(std::string* out, double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  AppendBigEndian64(out, bits);
}

absl::Status Refused(const std::string& what) {
  return absl::PermissionDeniedError(absl::StrCat("secure aggregation admission ", what));
}

absl::Status Denied(const std::string& site, const std::string& reason) {
  return absl::PermissionDeniedError(
      absl::StrCat("key advertisement of site '", site, "' ", reason));
}

absl::Status ParamDiffers(const char* name, double got, double expected) {
  return absl::PermissionDeniedError(absl::StrCat("secure aggregation ", name, " ", got,
                                                  " is not the ", expected,
                                                  " that the run spec gives for this round"));
}

}  // namespace

int GraphDegree(int num_sites, int neighbours) {
  if (num_sites <= 1) return 0;
  if (neighbours <= 0 || neighbours >= num_sites - 1) return num_sites - 1;
  return neighbours % 2 == 1 && num_sites % 2 == 1 ? neighbours + 1 : neighbours;
}

int DefaultThreshold(int degree) { return 2 * degree / 3 + 1; }

v1::SecAggParams ResolveParams(const v1::SecAggSettings& settings, int num_sites,
                               int64_t largest_declared_examples) {
  v1::SecAggParams params;
  params.set_neighbours(GraphDegree(num_sites, settings.neighbours()));
  params.set_threshold(settings.threshold() > 0 ? settings.threshold()
                                                : DefaultThreshold(params.neighbours()));
  params.set_clip(settings.clip() > 0 ? settings.clip() : kDefaultClip);
  params.set_max_sites(num_sites);
  params.set_max_examples(std::max<int64_t>(
      1, settings.max_examples() > 0 ? settings.max_examples() : largest_declared_examples));
  return params;
}

absl::Status CheckFloor(int threshold, int degree, const SecAggFloor& floor) {
  if (degree < floor.min_peers) {
    return absl::PermissionDeniedError(absl::StrCat(
        "secure aggregation would mask with ", degree,
        " neighbours; this site's policy needs at least ", floor.min_peers, " (min_secagg_peers)"));
  }
  // A tiny slack so that 2/3 * 6 rounding to 3.9999... never lets 4 pass.
  const double fraction_bound = floor.min_threshold_fraction * degree + 1e-9;
  if (threshold < 2 || threshold <= fraction_bound) {
    return absl::PermissionDeniedError(absl::StrCat(
        "secure aggregation threshold ", threshold, " of ", degree,
        " neighbours is too low; this site's policy needs more than ", floor.min_threshold_fraction,
        " of them (min_secagg_threshold_fraction) and at least 2"));
  }
  if (threshold > degree) {
    return absl::PermissionDeniedError(
        absl::StrCat("secure aggregation threshold ", threshold, " exceeds the ", degree,
                     " neighbours that hold a site's shares: no secret could be rebuilt"));
  }
  return absl::OkStatus();
}

absl::Status CheckParams(const v1::SecAggParams& params, const v1::SecAggSettings& settings,
                         int num_sites, const SecAggFloor& floor) {
  const v1::SecAggParams expected = ResolveParams(settings, num_sites, params.max_examples());
  if (params.max_sites() != expected.max_sites()) {
    return ParamDiffers("max_sites", params.max_sites(), expected.max_sites());
  }
  if (params.neighbours() != expected.neighbours()) {
    return ParamDiffers("neighbours", params.neighbours(), expected.neighbours());
  }
  if (params.threshold() != expected.threshold()) {
    return ParamDiffers("threshold", params.threshold(), expected.threshold());
  }
  if (params.clip() != expected.clip()) {
    return ParamDiffers("clip", params.clip(), expected.clip());
  }
  if (params.max_examples() < 1) {
    return absl::PermissionDeniedError(absl::StrCat(
        "secure aggregation max_examples must be at least 1, got ", params.max_examples()));
  }
  return CheckFloor(params.threshold(), params.neighbours(), floor);
}

RoundId RoundIdOf(const v1::RoundAdmission& admission) {
  return RoundId{admission.run_id(), admission.round(), admission.attempt(), admission.nonce()};
}

std::string AdmissionBytes(const v1::RoundAdmission& admission) {
  std::string out;
  AppendField(&out, "fedmi/secagg/admission/v1");
  out += RoundIdBytes(RoundIdOf(admission));
  AppendU32(&out, static_cast<uint32_t>(admission.sites_size()));
  for (const std::string& site : admission.sites()) AppendField(&out, site);
  const v1::SecAggParams& params = admission.params();
  AppendU32(&out, static_cast<uint32_t>(params.threshold()));
  AppendU32(&out, static_cast<uint32_t>(params.neighbours()));
  AppendDouble(&out, params.clip());
  AppendU32(&out, static_cast<uint32_t>(params.max_sites()));
  AppendI64(&out, params.max_examples());
  return out;
}

absl::Status SignAdmission(const std::string& key_pem, const std::string& cert_pem,
                           v1::RoundAdmission* admission) {
  ASSIGN_OR_RETURN(std::string signature, SignWithKeyPem(key_pem, AdmissionBytes(*admission)));
  admission->set_signature(std::move(signature));
  admission->set_certificate_pem(cert_pem);
  return absl::OkStatus();
}

absl::Status VerifyAdmission(const v1::RoundAdmission& admission, const std::string& ca_pem,
                             absl::Time now, const RevocationList* revoked) {
  absl::Status identity = VerifyPartyCertificate(admission.certificate_pem(), ca_pem, "",
                                                 PartyRole::kCoordinator, now, revoked);
  if (!identity.ok()) {
    return Refused(
        absl::StrCat("is not signed by the project's coordinator: ", identity.message()));
  }
  if (!VerifyWithCertificatePem(admission.certificate_pem(), AdmissionBytes(admission),
                                admission.signature())
           .ok()) {
    return Refused("has a bad signature");
  }
  if (admission.attempt() < 1) return Refused(absl::StrCat("has attempt ", admission.attempt()));
  if (admission.nonce().size() != kAttemptNonceSize) {
    return Refused(
        absl::StrCat("has a ", admission.nonce().size(), "-byte nonce, not ", kAttemptNonceSize));
  }
  for (int i = 1; i < admission.sites_size(); ++i) {
    if (!(admission.sites(i - 1) < admission.sites(i))) {
      return Refused(absl::StrCat("does not list its sites sorted and distinct at '",
                                  admission.sites(i), "'"));
    }
  }
  if (admission.params().max_sites() != admission.sites_size()) {
    return Refused(absl::StrCat("admits ", admission.sites_size(),
                                " sites but sizes the round for ", admission.params().max_sites()));
  }
  return absl::OkStatus();
}

RoundId RoundIdOf(const v1::KeyAdvertisement& ad) {
  return RoundId{ad.run_id(), ad.round(), ad.attempt(), ad.nonce()};
}

std::string GraphSeed(const std::vector<v1::KeyAdvertisement>& sorted_ads) {
  Sha256 hasher;
  for (const v1::KeyAdvertisement& ad : sorted_ads) {
    hasher.Update(KeyAdvertisementBytes(RoundIdOf(ad), ad.site(), ad.cipher_public_key(),
                                        ad.mask_public_key()));
  }
  return hasher.Final();
}

absl::Status VerifyAdvertisement(const v1::KeyAdvertisement& ad, const RoundId& id,
                                 const std::string& ca_pem, absl::Time now,
                                 const RevocationList* revoked) {
  const std::string& site = ad.site();
  if (ad.run_id() != id.run_id || ad.round() != id.round || ad.attempt() != id.attempt ||
      ad.nonce() != id.nonce) {
    return Denied(site, absl::StrCat("is for run ", ad.run_id(), " round ", ad.round(), " attempt ",
                                     ad.attempt(), ", expected run ", id.run_id, " round ",
                                     id.round, " attempt ", id.attempt,
                                     ad.attempt() == id.attempt ? " (another nonce)" : ""));
  }
  if (ad.cipher_public_key().size() != kKeySize || ad.mask_public_key().size() != kKeySize) {
    return Denied(site, "has a public key that is not 32 bytes");
  }
  if (ad.certificate_pem().empty()) return Denied(site, "has no certificate");
  absl::Status identity =
      VerifyPartyCertificate(ad.certificate_pem(), ca_pem, site, PartyRole::kSite, now, revoked);
  if (!identity.ok()) {
    return Denied(site, absl::StrCat("has an unacceptable certificate: ", identity.message()));
  }
  absl::Status signature = VerifyKeyAdvertisement(
      ad.certificate_pem(), id, site, ad.cipher_public_key(), ad.mask_public_key(), ad.signature());
  if (!signature.ok()) return Denied(site, "has a bad signature");
  return absl::OkStatus();
}

std::string SurvivorSetBytes(const RoundId& id, const std::string& graph_seed,
                             const std::vector<std::string>& sorted_survivors) {
  std::string out;
  AppendField(&out, "fedmi/secagg/survivors/v1");
  out += RoundIdBytes(id);
  AppendField(&out, graph_seed);
  AppendU32(&out, static_cast<uint32_t>(sorted_survivors.size()));
  for (const std::string& site : sorted_survivors) AppendField(&out, site);
  return out;
}

}  // namespace fedmi::secagg
