// SiteDaemon: a hospital site's connection to the coordinator. It dials out
// (hospital firewalls allow no inbound port), keeps one Connect stream open,
// reconnects with exponential backoff and jitter, and runs the tasks pushed
// down the stream one at a time on a SiteWorker.
//
// A securely aggregated round (TrainTask.secagg set) runs a
// secagg::SecAggParticipant around the usual training; the coordinator's
// messages arrive in this order, each for the task's run and round:
//   train (task queue) -> [site: key_advertisement] -> peer_keys (inbox)
//   -> [site: shares] -> download, train -> relayed_shares (inbox)
//   -> [site: masked upload] -> unmask_request (task queue)
//   -> [site: unmask_response]
// peer_keys and relayed_shares bypass the task queue (SecAggInbox), since the
// running train task is the one waiting for them. A site that catches a peer
// breaking the protocol sends a TaskFailure with protocol_violation set.
//
// Test-only fault injection: with FEDMI_TEST_CRASH_AT=secagg-before-masked-upload
// in its environment the process kills itself (SIGKILL) once every site's
// shares have been relayed to it, before its masked upload. Integration tests use it to drop a site
// at exactly that step; nothing else may set it.
//
// Run() blocks until Stop() is called from another thread (or a signal
// handler's flag is polled by the caller). Thread-safe for Stop().
#ifndef FEDMI_CLIENT_SITE_DAEMON_H_
#define FEDMI_CLIENT_SITE_DAEMON_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/secagg_inbox.h"
#include "client/site_worker.h"
#include "common/rpc/channels.h"
#include "fedmi/v1/federation.grpc.pb.h"

namespace fedmi {

namespace secagg {
class SecAggParticipant;
}

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
  SiteDaemon(SiteDaemonOptions options, SiteWorker* worker);
  ~SiteDaemon();

  // Returns OK after Stop(), or an error when giving up on the coordinator.
  absl::Status Run();
  void Stop();

 private:
  using Stream = grpc::ClientReaderWriter<v1::SiteMessage, v1::CoordinatorMessage>;
  using RoundKey = std::pair<int64_t, int32_t>;  // run, round
  struct QueuedTask {
    int64_t session;  // the Connect session that carried it
    v1::CoordinatorMessage message;
  };

  // One Connect session; returns when the stream ends.
  absl::Status RunSession();
  void WorkerLoop();
  void Execute(const QueuedTask& task);
  void RunInit(const v1::InitTask& task);
  void RunTrain(const v1::TrainTask& task, int64_t session);
  void RunEval(const v1::EvalTask& task);
  void RunUnmask(const v1::UnmaskRequest& request);
  absl::StatusOr<TensorBundle> Download(const v1::ModelRef& ref);
  absl::Status Upload(const v1::UpdateMetadata& metadata, const TensorBundle& bundle);
  // Stores the coordinator's signed receipt in options_.receipts_dir.
  void KeepReceipt(const v1::UploadReceipt& receipt);
  void SendToCoordinator(const v1::SiteMessage& message);
  void ReportFailure(int64_t run_id, int32_t round, const absl::Status& status);
  void SendTaskFailure(int64_t run_id, int32_t round, const std::string& reason,
                       bool protocol_violation);
  bool Cancelled(int64_t run_id);

  // Secure aggregation steps of RunTrain. Errors are prefixed "secure
  // aggregation: "; `violation` is set when the error is a peer's breach of
  // the protocol (reported as such instead of through ReportFailure).
  // Start, advertise, await peer keys, send shares.
  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> ShareSecAggSecrets(
      const v1::TrainTask& task, int64_t session, bool* violation);
  // Await relayed shares, mask, upload; keeps the participant for unmasking.
  absl::Status UploadMasked(const v1::TrainTask& task, int64_t session,
                            std::unique_ptr<secagg::SecAggParticipant> participant,
                            const TensorBundle& global, const LocalUpdate& update,
                            const v1::UpdateMetadata& metadata, bool* violation);
  absl::StatusOr<v1::CoordinatorMessage> AwaitSecAgg(SecAggInbox::Kind kind,
                                                     const v1::TrainTask& task, int64_t session);
  // Why a secure-aggregation wait for `run_id` begun on `session` must end:
  // Cancelled for a cancelled run, Unavailable when stopping or when that
  // session ended (the coordinator then drops this site from the round).
  absl::Status SecAggAbortReason(int64_t run_id, int32_t round, int64_t session);
  // Whether the coordinator abandoned this round of the run (it failed and
  // will be retried, or the run fails).
  bool RoundAbandoned(int64_t run_id, int32_t round);
  // Wipes participants of `run_id` for rounds before `round` (all: INT32_MAX).
  void DropParticipants(int64_t run_id, int32_t round);
  void DropCancelledParticipants();

  SiteDaemonOptions options_;
  SiteWorker* worker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  std::deque<QueuedTask> tasks_ ABSL_GUARDED_BY(mu_);
  std::set<int64_t> cancelled_runs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int32_t> abandoned_rounds_ ABSL_GUARDED_BY(mu_);  // run -> round
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t session_ ABSL_GUARDED_BY(mu_) = 0;  // counts Connect sessions

  SecAggInbox secagg_inbox_;
  // Worker thread only. A round's participant lives from its masked upload
  // until its unmask request (or until the run moves on, ends or is
  // cancelled); its destructor wipes its secrets.
  std::map<RoundKey, std::unique_ptr<secagg::SecAggParticipant>> participants_;

  absl::Mutex write_mu_;  // one writer at a time on the stream
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_DAEMON_H_
