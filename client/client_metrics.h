// fedmi-client's Prometheus metrics (docs/operations.md lists them), fed by
// the training it observes (client/training_progress.h) and served on
// `--http` (client/client_http.h):
//
//   fedmi_client_images_trained_total           counter images trained on, every epoch counted
//   fedmi_client_training_seconds_total         counter time spent in local training
//   fedmi_client_training_images_per_second     gauge   throughput of the latest epoch so far
//   fedmi_client_training_loss                  gauge   running mean loss of the latest epoch
//   fedmi_client_rounds_joined_total            counter rounds trained and sent an update for
//   fedmi_client_rounds_refused_total{reason}   counter train tasks not done, by reason
//   fedmi_client_round_phase_seconds_total{phase} counter completed train tasks' wall
//                                                         time: download, training,
//                                                         secagg, upload
//   fedmi_client_last_run                       gauge   run id of the latest train task
//   fedmi_client_last_round                     gauge   its round
//
// Refusal reasons (RefusalReason): "policy" (the site's policy, its
// operator or its privacy budget said no), "unsupported" (the site cannot
// run the spec: model, data, geometry) and "failed" (anything after it
// agreed: a download, an upload, secure aggregation). Each is listed from
// the start, at 0.
//
// DP-SGD trainings count their time and loss but no images: their batches
// are sampled, so images per step are not a pass over the data.
//
// Thread-safe: the observer calls come from the task thread, renders from
// the listener's.
#ifndef FEDMI_CLIENT_CLIENT_METRICS_H_
#define FEDMI_CLIENT_CLIENT_METRICS_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/training_progress.h"
#include "common/metrics/metric_registry.h"

namespace fedmi {

// "policy", "unsupported" or "failed" for a train task's non-OK outcome.
const char* RefusalReason(const absl::Status& outcome);

class ClientMetrics final : public TrainingObserver {
 public:
  // Registers the families on `registry` (not owned; it must outlive the
  // returned object). AlreadyExists when one is registered already.
  static absl::StatusOr<std::unique_ptr<ClientMetrics>> Register(metrics::MetricRegistry* registry);

  void OnTrainingProgress(const TrainingProgress& progress) override;
  void OnRoundOutcome(int64_t run_id, int32_t round, const absl::Status& outcome) override;
  void OnRoundPhases(int64_t run_id, int32_t round, const RoundPhaseTimes& phases) override;

 private:
  ClientMetrics() = default;

  metrics::CounterFamily* images_ = nullptr;
  metrics::CounterFamily* seconds_ = nullptr;
  metrics::GaugeFamily* images_per_second_ = nullptr;
  metrics::GaugeFamily* loss_ = nullptr;
  metrics::CounterFamily* joined_ = nullptr;
  metrics::CounterFamily* refused_ = nullptr;
  metrics::CounterFamily* phase_seconds_ = nullptr;
  metrics::GaugeFamily* last_run_ = nullptr;
  metrics::GaugeFamily* last_round_ = nullptr;

  // What the previous progress of the same epoch had counted already.
  absl::Mutex mu_;
  int64_t run_ ABSL_GUARDED_BY(mu_) = -1;
  int32_t round_ ABSL_GUARDED_BY(mu_) = -1;
  int epoch_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t counted_done_ ABSL_GUARDED_BY(mu_) = 0;
  double counted_seconds_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_CLIENT_METRICS_H_
