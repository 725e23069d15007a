// Which connected sites train in a round. A pure function, so a replayed run
// (same seed, same connected sites) selects the same sites.
#ifndef FEDMI_COORDINATOR_SITE_SELECTION_H_
#define FEDMI_COORDINATOR_SITE_SELECTION_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmi {

// All of `connected` when `max_sites` is 0 or not exceeded; otherwise a
// sample of `max_sites` seeded by the run's seed and the round. Sorted.
std::vector<std::string> SelectRoundSites(std::vector<std::string> connected, int max_sites,
                                          uint64_t run_seed, int32_t round);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SITE_SELECTION_H_
