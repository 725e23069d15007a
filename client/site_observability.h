// What fedmi-client shows of its work besides its log: the training progress
// on stderr (a bar on a terminal, a line per epoch otherwise) and, with
// --http, its Prometheus /metrics (client/client_metrics.h,
// client/client_http.h). One object per daemon, built before the worker,
// which gets observer().
#ifndef FEDMI_CLIENT_SITE_OBSERVABILITY_H_
#define FEDMI_CLIENT_SITE_OBSERVABILITY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "client/client_http.h"
#include "client/client_metrics.h"
#include "client/training_progress.h"
#include "common/http/http_listener.h"
#include "common/metrics/metric_registry.h"

namespace fedmi {

class SiteObservability {
 public:
  // Progress goes to stderr, as a bar when stderr is a terminal. With
  // `http.address` set, /metrics is served there (StartClientHttp); its
  // errors are StartClientHttp's.
  static absl::StatusOr<std::unique_ptr<SiteObservability>> Start(const ClientHttpOptions& http);

  // Not owned by the caller; valid as long as this object.
  TrainingObserver* observer() { return &observers_; }
  // The bound port, or 0 without a listener.
  int http_port() const { return listener_ != nullptr ? listener_->port() : 0; }

 private:
  SiteObservability();

  metrics::MetricRegistry registry_;
  std::unique_ptr<ClientMetrics> metrics_;
  ProgressPrinter printer_;
  TrainingObservers observers_;
  // Last: stopped first, while what its handlers read still exists.
  std::unique_ptr<http::Listener> listener_;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_OBSERVABILITY_H_
