// The coordinator's Prometheus metrics (docs/operations.md lists them). Every
// family is a collector that reads the Federation's and Storage's state when
// /metrics is rendered, so nothing is counted twice and nothing is lost
// across a restart: a scrape shows what `fedmi run status` and
// `fedmi site list` would.
//
//   fedmi_coordinator_sites_known                  gauge  sites ever registered, revoked included
//   fedmi_coordinator_sites_connected              gauge  sites with an open control stream
//   fedmi_coordinator_sites_revoked                gauge  revoked sites
//   fedmi_coordinator_runs{state}                  gauge  runs per state, every state listed
//   fedmi_coordinator_run_current_round{run}       gauge  the round under way (0: none yet)
//   fedmi_coordinator_run_completed_rounds{run}    gauge  the last evaluated round
//   fedmi_coordinator_run_phase{run,phase}         gauge  1 for the run's phase, 0 for the others
//   fedmi_coordinator_run_validation_auc{run}      gauge  pooled validation AUC of the last
//                                                         evaluated round
//   fedmi_coordinator_audit_entries_total          counter entries in the audit log
//   fedmi_coordinator_updates_accepted_total       counter updates taken (audit update.received)
//   fedmi_coordinator_updates_received_bytes_total counter their bytes
//   fedmi_coordinator_updates_refused_total{code}  counter updates refused (audit update.refused),
//                                                         by status code: "invalid_argument", ...
//
// The update counters tally the audit log's entries since the log began
// (not since the process started): a render reads only the entries appended
// since the previous one, the first render all of them.
//
// The per-run families cover the unfinished (pending and running) runs only:
// a run's series end when it does, so that months of finished runs do not
// pile up as series; `fedmi run status` keeps their history. `run` is the run
// id.
//
// Thread-safe: the collectors take only the Federation's and Storage's own
// locks. One render reads each unfinished run's status once for all of its
// families, and reuses it while Federation::version() is unchanged.
#ifndef FEDMI_COORDINATOR_COORDINATOR_METRICS_H_
#define FEDMI_COORDINATOR_COORDINATOR_METRICS_H_

#include "absl/status/status.h"
#include "common/metrics/metric_registry.h"
#include "coordinator/federation.h"
#include "coordinator/storage.h"

namespace fedmi {

// Registers the families above on `registry`. `federation` and `storage`
// (not owned) must outlive the registry's last RenderText. Fails only when a
// family of the same name is already registered.
absl::Status RegisterCoordinatorMetrics(Federation* federation, Storage* storage,
                                        metrics::MetricRegistry* registry);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_COORDINATOR_METRICS_H_
