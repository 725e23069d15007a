// A run's server optimizer settings (RunSpec.server_optimizer): the kind's
// defaults the coordinator stores in the spec at run start, the checks, and
// the ServerOptimizerOptions every round steps with.
//
// Pure functions of the spec; thread-safe.
#ifndef FEDMI_COORDINATOR_SERVER_OPTIMIZER_SETTINGS_H_
#define FEDMI_COORDINATOR_SERVER_OPTIMIZER_SETTINGS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/server_optimizer.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Fills in the settings the kind reads and the admin left out
// (DefaultServerOptimizerOptions), so that the stored spec and the audit log
// say what ran; a spec without a server optimizer, or of kind fedavg with
// nothing set, keeps none. InvalidArgument, naming the setting, for an
// unknown kind, a setting the kind does not read ("beta2 applies to fedadam
// and fedyogi, not to fedadagrad"), or a value out of range.
absl::Status CompleteServerOptimizerSettings(v1::RunSpec* spec);

// The options of a spec that CompleteServerOptimizerSettings accepted
// (fedavg when it has none). InvalidArgument for an unknown kind.
absl::StatusOr<ServerOptimizerOptions> ServerOptimizerOptionsOf(const v1::RunSpec& spec);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_SERVER_OPTIMIZER_SETTINGS_H_
