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
//   fedmi_coordinator_round_duration_seconds{outcome} histogram round.opened to round.evaluated
//                                                         ("evaluated") or round.failed, or a
//                                                         run.finished in state failed ("failed")
//   fedmi_coordinator_sent_bytes_total{stream}     counter model bytes streamed: "model_download"
//                                                         to sites, "model_export" to admins
//   fedmi_coordinator_phase_seconds_total{phase}   counter thread-seconds of the update path per
//                                                         phase (coordinator/phase_times.h)
//
// The update counters and the round durations tally the audit log's entries
// since the log began (not since the process started): a render reads only
// the entries appended since the previous one, the first render all of them,
// in pages of bounded size. sent_bytes counts what the gRPC adapters stream
// (CountSentBytes), since the process started.
//
// The coordinator holds no test results: sites report validation metrics
// per round, and a model's test AUC is measured by whoever holds a test
// split (`fedmi model evaluate`), so the AUC here is the validation AUC.
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

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics/metric_registry.h"
#include "coordinator/federation.h"
#include "coordinator/storage.h"

namespace fedmi {

// The streams whose bytes fedmi_coordinator_sent_bytes_total counts.
enum class SentStream { kModelDownload, kModelExport };
const char* SentStreamName(SentStream stream);

// What the transport counts itself, as it writes.
struct CoordinatorTransferMetrics {
  metrics::CounterFamily* sent_bytes = nullptr;  // owned by the registry
};

// Registers the families above on `registry`. `federation` and `storage`
// (not owned) must outlive the registry's last RenderText. Fails only when a
// family of the same name is already registered.
absl::StatusOr<CoordinatorTransferMetrics> RegisterCoordinatorMetrics(
    Federation* federation, Storage* storage, metrics::MetricRegistry* registry);

// Adds `bytes` to `stream`'s sent bytes; nothing when `transfer` is null
// (no metrics served).
void CountSentBytes(const CoordinatorTransferMetrics* transfer, SentStream stream, size_t bytes);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_COORDINATOR_METRICS_H_
