// The run-level summary of one round's evaluation reports: what the round
// manager stores as the round's metrics and records in the audit log.
// Pure functions; thread-safe.
#ifndef FEDMI_COORDINATOR_EVALUATION_SUMMARY_H_
#define FEDMI_COORDINATOR_EVALUATION_SUMMARY_H_

#include <nlohmann/json.hpp>
#include <vector>

#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Example-weighted mean of the sites' metrics. Each field is averaged over
// the sites that report a finite value for it (NaN when none does), so one
// site whose validation data has a single class (AUC undefined) does not
// poison the aggregate. `examples` is the sum over all sites.
v1::Metrics WeightedMean(const std::vector<v1::Metrics>& parts);

// The metrics as a JSON object; a value that is not finite becomes null.
nlohmann::json MetricsJson(const v1::Metrics& metrics);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_EVALUATION_SUMMARY_H_
