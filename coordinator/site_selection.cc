#include "coordinator/site_selection.h"

#include <algorithm>
#include <random>

namespace fedmi {

std::vector<std::string> SelectRoundSites(std::vector<std::string> connected, int max_sites,
                                          uint64_t run_seed, int32_t round) {
  if (max_sites > 0 && static_cast<int>(connected.size()) > max_sites) {
    std::mt19937_64 random(run_seed * 1000003 + round);
    std::shuffle(connected.begin(), connected.end(), random);
    connected.resize(max_sites);
  }
  std::sort(connected.begin(), connected.end());
  return connected;
}

}  // namespace fedmi
