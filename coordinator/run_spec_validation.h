// What a run spec must satisfy before the coordinator stores it: defaults
// for the fields an admin may leave out, then a range check of every field.
// Pure functions of the spec; thread-safe.
#ifndef FEDMI_COORDINATOR_RUN_SPEC_VALIDATION_H_
#define FEDMI_COORDINATOR_RUN_SPEC_VALIDATION_H_

#include "absl/status/status.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Fills defaults into `spec` and checks every field, naming the first bad
// one: "rounds must be at least 1, got 0". InvalidArgument for a bad value,
// Unimplemented for a feature the coordinator cannot honour yet.
absl::Status ValidateRunSpec(v1::RunSpec* spec);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_RUN_SPEC_VALIDATION_H_
