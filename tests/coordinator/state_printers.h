// GoogleTest prints the state enums of common/base/names.h by name, so a
// failed EXPECT_EQ(run.state, RunState::kDone) says "running", not bytes.
#ifndef FEDMI_TESTS_COORDINATOR_STATE_PRINTERS_H_
#define FEDMI_TESTS_COORDINATOR_STATE_PRINTERS_H_

#include <ostream>

#include "common/base/names.h"

namespace fedmi {

inline void PrintTo(RunState state, std::ostream* out) { *out << StateName(state); }
inline void PrintTo(RoundState state, std::ostream* out) { *out << StateName(state); }
inline void PrintTo(ParticipationState state, std::ostream* out) { *out << StateName(state); }

}  // namespace fedmi

#endif  // FEDMI_TESTS_COORDINATOR_STATE_PRINTERS_H_
