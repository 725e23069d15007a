// SiteDaemon: a hospital site's connection to the coordinator, and nothing
// more. It dials out (hospital firewalls allow no inbound port), says hello,
// keeps one Connect stream open with heartbeats, reconnects with exponential
// backoff and jitter, and pumps what the coordinator sends into a
// SiteSession, which owns the round logic and runs the tasks one at a time
// on its own thread. The session reaches the coordinator back through a
// GrpcCoordinatorLink.
//
// Run() blocks until Stop() is called from another thread (or a signal
// handler's flag is polled by the caller). Thread-safe for Stop(). The
// worker and the fault hook are not owned and must outlive the daemon.
#ifndef FEDMI_CLIENT_SITE_DAEMON_H_
#define FEDMI_CLIENT_SITE_DAEMON_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/grpc_coordinator_link.h"
#include "client/site_session.h"
#include "client/site_worker.h"
#include "common/base/clock.h"
#include "common/base/fault_hook.h"
#include "common/rpc/channels.h"
#include "fedmi/v1/federation.grpc.pb.h"

namespace fedmi {

struct SiteDaemonOptions {
  std::string coordinator;  // HOST:PORT
  std::string site;
  TransportOptions transport;
  absl::Duration heartbeat = absl::Seconds(10);
  absl::Duration max_backoff = absl::Seconds(10);
  // Where the coordinator's signed upload receipts are kept, one file per
  // round (empty: not kept).
  std::string receipts_dir;
  // Exit after the coordinator has been unreachable this long (0 = never).
  absl::Duration give_up_after = absl::ZeroDuration();
};

class SiteDaemon {
 public:
  // `faults`: where a crash test may stop this site (see common/base/
  // fault_hook.h); production passes NoFaults().
  SiteDaemon(SiteDaemonOptions options, SiteWorker& worker, FaultHook& faults = NoFaults());
  ~SiteDaemon();

  // Returns OK after Stop(), or an error when giving up on the coordinator
  // or when it refuses this site.
  absl::Status Run();
  void Stop();

 private:
  // One Connect stream; returns when it ends.
  absl::Status RunConnection();

  const SiteDaemonOptions options_;
  SiteWorker& worker_;
  FaultHook& faults_;
  RealClock clock_;
  std::atomic<bool> stop_{false};

  // Set up by Run().
  std::unique_ptr<v1::Federation::Stub> stub_;
  std::unique_ptr<GrpcCoordinatorLink> link_;

  absl::Mutex mu_;
  std::unique_ptr<SiteSession> session_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_DAEMON_H_
