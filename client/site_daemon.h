// SiteDaemon: a hospital site's connection to the coordinator. It dials out
// (hospital firewalls allow no inbound port), keeps one Connect stream open,
// reconnects with exponential backoff and jitter, and runs the tasks pushed
// down the stream one at a time on a SiteWorker.
//
// Run() blocks until Stop() is called from another thread (or a signal
// handler's flag is polled by the caller). Thread-safe for Stop().
#ifndef FEDMI_CLIENT_SITE_DAEMON_H_
#define FEDMI_CLIENT_SITE_DAEMON_H_

#include <atomic>
#include <deque>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/site_worker.h"
#include "common/rpc/channels.h"
#include "fedmi/v1/federation.grpc.pb.h"

namespace fedmi {

struct SiteDaemonOptions {
  std::string coordinator;  // HOST:PORT
  std::string site;
  TransportOptions transport;
  absl::Duration heartbeat = absl::Seconds(10);
  absl::Duration max_backoff = absl::Seconds(10);
  // Exit after the coordinator has been unreachable this long (0 = never).
  absl::Duration give_up_after = absl::ZeroDuration();
};

class SiteDaemon {
 public:
  SiteDaemon(SiteDaemonOptions options, SiteWorker* worker);
  ~SiteDaemon();

  // Returns OK after Stop(), or an error when giving up on the coordinator.
  absl::Status Run();
  void Stop();

 private:
  using Stream = grpc::ClientReaderWriter<v1::SiteMessage, v1::CoordinatorMessage>;

  // One Connect session; returns when the stream ends.
  absl::Status RunSession();
  void WorkerLoop();
  void Execute(const v1::CoordinatorMessage& task);
  void RunInit(const v1::InitTask& task);
  void RunTrain(const v1::TrainTask& task);
  void RunEval(const v1::EvalTask& task);
  absl::StatusOr<TensorBundle> Download(const v1::ModelRef& ref);
  absl::Status Upload(const v1::UpdateMetadata& metadata, const TensorBundle& bundle);
  void SendToCoordinator(const v1::SiteMessage& message);
  void ReportFailure(int64_t run_id, int32_t round, const absl::Status& status);
  bool Cancelled(int64_t run_id);

  SiteDaemonOptions options_;
  SiteWorker* worker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> tasks_ ABSL_GUARDED_BY(mu_);
  std::set<int64_t> cancelled_runs_ ABSL_GUARDED_BY(mu_);
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;

  absl::Mutex write_mu_;  // one writer at a time on the stream
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_DAEMON_H_
