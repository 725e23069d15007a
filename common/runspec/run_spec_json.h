// A run spec as JSON, one way everywhere: in the audit log's run.started
// entries and in `fedmi run status --json`.
#ifndef FEDMI_COMMON_RUNSPEC_RUN_SPEC_JSON_H_
#define FEDMI_COMMON_RUNSPEC_RUN_SPEC_JSON_H_

#include <nlohmann/json.hpp>

#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Every field by its proto name; secagg settings as a nested object. Non-finite
// numbers (which a validated spec never holds) become null.
nlohmann::json RunSpecToJson(const v1::RunSpec& spec);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_RUN_SPEC_JSON_H_
