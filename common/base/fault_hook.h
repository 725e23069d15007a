// FaultHook: the named steps at which a process-level crash test may stop a
// real coordinator or site. Core classes receive a FaultHook through their
// dependencies and call Reached(); production wiring passes NoFaults(). Only
// the binaries' main() installs CrashAtFaultPointFromEnvironment(), which
// SIGKILLs the process at the step named in $FEDMI_TEST_CRASH_AT:
//   FEDMI_TEST_CRASH_AT=<point>           the first time the point is reached
//   FEDMI_TEST_CRASH_AT=<point>:<round>   only in that round
// The point names are listed in docs/operations.md.
#ifndef FEDMI_COMMON_BASE_FAULT_HOOK_H_
#define FEDMI_COMMON_BASE_FAULT_HOOK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace fedmi {

enum class FaultPoint {
  kCoordinatorMidUpload,       // after an update's first body chunk
  kCoordinatorMidAggregation,  // after an update is folded into the sum
  kCoordinatorCommit,          // model file written, round not committed
  kCoordinatorEvaluation,      // evaluation tasks sent, reports not stored
  kCoordinatorBetweenRounds,   // round evaluated, next round not opened
  kSiteBeforeMaskedUpload,     // secure aggregation: shares sent, no upload
};

// "coordinator-mid-upload", ...: the names tests put in FEDMI_TEST_CRASH_AT.
const char* FaultPointName(FaultPoint point);
std::optional<FaultPoint> ParseFaultPoint(absl::string_view name);

// Thread-safe: Reached() may be called from any thread.
class FaultHook {
 public:
  virtual ~FaultHook() = default;
  // `round` < 0: the step is not tied to a round.
  virtual void Reached(FaultPoint point, int32_t round) = 0;
};

// A hook that does nothing. Never deleted.
FaultHook& NoFaults();

// Reads $FEDMI_TEST_CRASH_AT once; returns a hook that SIGKILLs the process
// at that point (a real crash runs no cleanup), or NoFaults() when unset.
// The caller keeps the returned hook alive for the process lifetime.
FaultHook& CrashAtFaultPointFromEnvironment();

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_FAULT_HOOK_H_
