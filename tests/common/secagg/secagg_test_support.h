// Round attempts and signed admissions for secure-aggregation tests: the
// coordinator's side of the admission, as tests that play it need it.
#ifndef FEDMI_TESTS_COMMON_SECAGG_SECAGG_TEST_SUPPORT_H_
#define FEDMI_TESTS_COMMON_SECAGG_SECAGG_TEST_SUPPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/provision/project_ca.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_transcript.h"
#include "fedmi/v1/secagg.pb.h"
#include "gtest/gtest.h"

namespace fedmi {

// A round attempt with a nonce that differs per attempt.
inline secagg::RoundId TestRoundId(int64_t run_id, int32_t round, int32_t attempt = 1) {
  return secagg::RoundId{run_id, round, attempt,
                         std::string(secagg::kAttemptNonceSize, static_cast<char>('a' + attempt))};
}

// The admission of `sites` to attempt `id`, with the params ResolveParams
// gives for `settings`, signed by `coordinator` (whatever its role: tests of
// forged admissions sign with other certificates).
inline v1::RoundAdmission SignedAdmission(const IssuedParty& coordinator, const secagg::RoundId& id,
                                          const std::vector<std::string>& sorted_sites,
                                          const v1::SecAggSettings& settings,
                                          int64_t max_examples = 1000) {
  v1::RoundAdmission admission;
  admission.set_run_id(id.run_id);
  admission.set_round(id.round);
  admission.set_attempt(id.attempt);
  admission.set_nonce(id.nonce);
  for (const std::string& site : sorted_sites) admission.add_sites(site);
  *admission.mutable_params() =
      secagg::ResolveParams(settings, static_cast<int>(sorted_sites.size()), max_examples);
  EXPECT_TRUE(secagg::SignAdmission(coordinator.key_pem, coordinator.cert_pem, &admission).ok());
  return admission;
}

inline v1::SecAggSettings Settings(int threshold, int neighbours) {
  v1::SecAggSettings settings;
  settings.set_threshold(threshold);
  settings.set_neighbours(neighbours);
  settings.set_clip(1.0);
  settings.set_max_examples(1000);
  return settings;
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_COMMON_SECAGG_SECAGG_TEST_SUPPORT_H_
