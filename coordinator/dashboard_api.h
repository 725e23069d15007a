// The dashboard's JSON endpoints (/api/runs, /api/runs/ID, /api/sites),
// for scripts and monitoring that want the dashboard's numbers without
// parsing HTML. Pure functions of the admin API's status values.
//
// Numbers not measured (a round not yet evaluated) are null.
#ifndef FEDMI_COORDINATOR_DASHBOARD_API_H_
#define FEDMI_COORDINATOR_DASHBOARD_API_H_

#include <nlohmann/json.hpp>
#include <vector>

#include "fedmi/v1/admin.pb.h"

namespace fedmi::dashboard {

// {"runs": [summary...]}; a summary has run_id, state, phase,
// current_round, completed_rounds, rounds, model, strategy, error and
// latest_auc (pooled validation AUC of the last evaluated round).
nlohmann::json RunsJson(const std::vector<v1::RunStatus>& runs);
// A summary plus "rounds": [{round, state, eval: {loss, auc, sensitivity,
// specificity, dice, iou}, sites: [{site, state, examples, eval}]}].
nlohmann::json RunJson(const v1::RunStatus& run);
// {"sites": [{site, connected, state, last_seen, certificate_expires,
// train_examples, val_examples, revoked_by, revoked_at,
// revocation_reason}]}.
nlohmann::json SitesJson(const std::vector<v1::SiteInfo>& sites);

}  // namespace fedmi::dashboard

#endif  // FEDMI_COORDINATOR_DASHBOARD_API_H_
