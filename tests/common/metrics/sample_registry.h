// A registry shaped like the coordinator's /metrics (issue 16's list), with
// values that exercise escaping and float formatting. Shared by the
// registry test, which runs the strict checker on it, and by
// fedmi_metrics_exposition_sample, which prints it for `promtool check
// metrics`.
#ifndef FEDMI_TESTS_COMMON_METRICS_SAMPLE_REGISTRY_H_
#define FEDMI_TESTS_COMMON_METRICS_SAMPLE_REGISTRY_H_

#include <cmath>

#include "absl/status/status.h"
#include "common/base/status.h"
#include "common/metrics/metric_registry.h"

namespace fedmi::metrics::testing {

inline absl::Status FillSampleRegistry(MetricRegistry& registry) {
  RETURN_IF_ERROR(registry.AddGaugeCollector("fedmi_sites",
                                             "Sites the coordinator knows, by connection state.",
                                             {"state"}, [](MetricSnapshot& snapshot) {
                                               snapshot.Set({"connected"}, 3).IgnoreError();
                                               snapshot.Set({"known"}, 4).IgnoreError();
                                             }));
  RETURN_IF_ERROR(registry.AddGaugeCollector("fedmi_runs", "Runs by state.", {"state"},
                                             [](MetricSnapshot& snapshot) {
                                               snapshot.Set({"running"}, 1).IgnoreError();
                                               snapshot.Set({"done"}, 12).IgnoreError();
                                             }));
  ASSIGN_OR_RETURN(GaugeFamily * round,
                   registry.AddGauge("fedmi_run_round", "The current round of a run, by phase.",
                                     {"run", "phase"}));
  RETURN_IF_ERROR(round->Set({"run-7", "training"}, 17));
  ASSIGN_OR_RETURN(HistogramFamily * duration,
                   registry.AddHistogram("fedmi_round_duration_seconds",
                                         "Wall time of a round, from its tasks to its commit.",
                                         {0.5, 1, 2.5, 5, 10, 30, 60, 300}));
  for (double seconds : {0.25, 4.0, 7.5, 42.0, 1200.0}) {
    RETURN_IF_ERROR(duration->Observe({}, seconds));
  }
  ASSIGN_OR_RETURN(CounterFamily * received,
                   registry.AddCounter("fedmi_received_bytes_total",
                                       "Bytes received from sites (updates, reports).", {"site"}));
  RETURN_IF_ERROR(received->Add({"st-mary's \"north\"\\wing"}, 1.5e9));
  RETURN_IF_ERROR(received->Add({"general"}, 123456789012345678.0));
  ASSIGN_OR_RETURN(CounterFamily * sent,
                   registry.AddCounter("fedmi_sent_bytes_total", "Bytes sent to sites."));
  RETURN_IF_ERROR(sent->Add({}, 4096));
  ASSIGN_OR_RETURN(
      CounterFamily * updates,
      registry.AddCounter("fedmi_updates_total", "Site updates, by outcome and refusal reason.",
                          {"outcome", "reason"}));
  RETURN_IF_ERROR(updates->Add({"accepted", ""}, 40));
  RETURN_IF_ERROR(updates->Add({"refused", "norm bound\nexceeded"}, 2));
  RETURN_IF_ERROR(registry.AddCounterCollector(
      "fedmi_audit_entries_total", "Entries in the audit log.\nIncludes \\ sealed heads.", {},
      [](MetricSnapshot& snapshot) { snapshot.Set({}, 311).IgnoreError(); }));
  ASSIGN_OR_RETURN(GaugeFamily * auc,
                   registry.AddGauge("fedmi_run_validation_auc",
                                     "The latest pooled validation AUC of a run.", {"run"}));
  RETURN_IF_ERROR(auc->Set({"run-7"}, 0.8713));
  RETURN_IF_ERROR(auc->Set({"run-8"}, std::nan("")));
  return absl::OkStatus();
}

}  // namespace fedmi::metrics::testing

#endif  // FEDMI_TESTS_COMMON_METRICS_SAMPLE_REGISTRY_H_
