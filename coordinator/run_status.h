// How the coordinator reports its stored state to admins: the RunStatus,
// SiteInfo and Revocation messages of admin.proto, assembled from storage records. Live
// progress of a running round is added by RoundManager::FillLiveStatus.
// Pure functions of their arguments; thread-safe.
#ifndef FEDMI_COORDINATOR_RUN_STATUS_H_
#define FEDMI_COORDINATOR_RUN_STATUS_H_

#include <vector>

#include "coordinator/storage.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi {

// A run with its committed rounds (round 0, the initial model, is left out)
// and each round's participations. `completed_rounds` is the last evaluated
// round.
v1::RunStatus StoredRunStatus(const RunRecord& run, const std::vector<RoundRecord>& rounds,
                              const std::vector<ParticipationRecord>& participations);

// How many sites' updates reached the sums of rounds 1..committed_rounds
// (index r - 1): participations uploaded, or uploaded and then evaluated.
// What the privacy accountant composes for site-level DP.
std::vector<int> ContributorsPerRound(const std::vector<ParticipationRecord>& participations,
                                      int32_t committed_rounds);

// A known site; `connected` says whether it has an open control stream.
v1::SiteInfo SiteInfoOf(const SiteRecord& record, bool connected);

v1::Revocation RevocationOf(const RevocationRecord& record);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_RUN_STATUS_H_
