// Test-only fault injection: integration tests crash a real process at an
// exact step (a site after sharing its secrets, the coordinator during a
// commit...) by naming the step in its environment:
//   FEDMI_TEST_CRASH_AT=<point>           the first time the point is reached
//   FEDMI_TEST_CRASH_AT=<point>:<round>   only in that round
// The process then SIGKILLs itself: a real crash runs no cleanup. Nothing
// but tests sets the variable; the points are listed in docs/operations.md.
#ifndef FEDMI_COMMON_BASE_FAULT_INJECTION_H_
#define FEDMI_COMMON_BASE_FAULT_INJECTION_H_

#include <cstdint>

namespace fedmi {

// `round` < 0: the point is not tied to a round.
void CrashIfTestAsks(const char* point, int32_t round = -1);

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_FAULT_INJECTION_H_
