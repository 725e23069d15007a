#include "common/base/fault_injection.h"

#include <csignal>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "common/base/log.h"

namespace fedmi {

void CrashIfTestAsks(const char* point, int32_t round) {
  const char* crash_at = std::getenv("FEDMI_TEST_CRASH_AT");
  if (crash_at == nullptr) return;
  const std::string wanted = crash_at;
  const size_t colon = wanted.find(':');
  if (wanted.substr(0, colon) != point) return;
  if (colon != std::string::npos) {
    int32_t wanted_round = 0;
    if (!absl::SimpleAtoi(wanted.substr(colon + 1), &wanted_round) || wanted_round != round) {
      return;
    }
  }
  FEDMI_LOG(WARNING) << "FEDMI_TEST_CRASH_AT=" << wanted << ": killing this process (test only)";
  std::raise(SIGKILL);
}

}  // namespace fedmi
