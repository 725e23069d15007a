// SiteSession: a site's round logic, transport-free. It takes the messages
// the coordinator pushes down the site's control stream and does what they
// ask, one task at a time, on a SiteWorker:
//   init   -> build the initial model, upload it as round 0
//   train  -> policy check, download, train, upload (masked under secure
//             aggregation), keep the signed receipt
// Every train and eval task and every receipt carries the audit log's signed
// head; the session keeps each one next to the receipts and logs a
// violation when one contradicts those kept before (AuditHeadKeeper).
//   eval   -> policy check, download, evaluate, send an eval report
//   unmask -> reveal this site's shares of a securely aggregated round
//   cancel -> a run (round 0) or one round of it is given up
// A refused task (site policy, missing capability) goes back as a refusal,
// any other error as a task failure, and a peer's breach of secure
// aggregation as a failure with protocol_violation set. A lost connection is
// not reported: the coordinator notices it and hands the round out again.
//
// A securely aggregated round (TrainTask.secagg set) runs SiteSecAgg around
// the training; the coordinator's messages arrive in this order, each for
// the task's run and round:
//   train (task queue) -> [site: key_advertisement] -> peer_keys (inbox)
//   -> [site: shares] -> download, train -> relayed_shares (inbox)
//   -> [site: masked upload] -> survivor_set (task queue)
//   -> [site: survivor_signature] -> unmask_request (task queue)
//   -> [site: unmask_response]
// The coordinator drops a site from a secure round when its connection
// ends, so a round's waits end with the connection that carried its task.
//
// Threads: Connected, Disconnected, Deliver and Stop may be called from any
// thread (the daemon's stream reader calls the first three); RunNextTask and
// RunTasks from one task thread only. The worker, link, Env, FaultHook and
// Clock are not owned and must outlive the session.
#ifndef FEDMI_CLIENT_SITE_SESSION_H_
#define FEDMI_CLIENT_SITE_SESSION_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/audit_head_keeper.h"
#include "client/coordinator_link.h"
#include "client/site_secagg.h"
#include "client/site_worker.h"
#include "common/base/clock.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

struct SiteSessionOptions {
  std::string site;
  SiteIdentityFiles identity;
  // Where the coordinator's signed upload receipts are kept, one file per
  // round, with the audit heads in its heads/ subfolder (empty: not kept). A
  // receipt that cannot be written is logged: the upload has happened either
  // way.
  std::string receipts_dir;
};

class SiteSession {
 public:
  SiteSession(SiteSessionOptions options, SiteWorker& worker, CoordinatorLink& link, Env& env,
              FaultHook& faults, const Clock& clock);
  ~SiteSession();

  // A connection to the coordinator opened; tasks delivered from now on
  // belong to it.
  void Connected();
  // That connection ended: secure-aggregation messages buffered for it are
  // dropped and a secure round waiting on it gives up.
  void Disconnected();
  // Takes one message from the coordinator: tasks are queued for the task
  // thread; cancels and secure-aggregation messages act at once.
  void Deliver(const v1::CoordinatorMessage& message);

  // Runs the next queued task, waiting up to `wait` for one; false when none
  // came (or the session is stopping).
  bool RunNextTask(absl::Duration wait);
  // Runs tasks until Stop().
  void RunTasks();
  // Drops queued tasks and makes a running task's waits give up.
  void Stop();

 private:
  struct QueuedTask {
    int64_t connection;  // the connection that carried it
    v1::CoordinatorMessage message;
  };

  void OnCancel(const v1::CancelTask& cancel);
  void Execute(const QueuedTask& task);
  void RunInit(const v1::InitTask& task);
  void RunTrain(const v1::TrainTask& task, int64_t connection);
  // The training round itself; `violation` as in SiteSecAgg.
  absl::Status TrainRound(const v1::TrainTask& task, int64_t connection, bool* violation);
  void RunEval(const v1::EvalTask& task);
  void RunSignSurvivors(const v1::SurvivorSet& set);
  void RunUnmask(const v1::UnmaskRequest& request);
  // Sends `reply` to a consistency or unmask step, or reports the step as
  // refused (`status`).
  void SendSecAggReply(int64_t run_id, int32_t round, const absl::Status& status,
                       const v1::SiteMessage& reply);

  absl::StatusOr<TensorBundle> Download(const v1::ModelRef& ref);
  // Uploads and keeps the receipt. Errors start "upload for run".
  absl::Status Upload(const v1::UpdateMetadata& metadata, const TensorBundle& bundle);
  void KeepReceipt(const v1::UploadReceipt& receipt);
  // Keeps the head; a violation goes to the site's log as an error.
  void KeepAuditHead(const v1::SignedAuditHead& head, AuditHeadKeeper::Channel channel,
                     const std::string& via);
  void ReportFailure(int64_t run_id, int32_t round, const absl::Status& status);
  void SendTaskFailure(int64_t run_id, int32_t round, const std::string& reason,
                       bool protocol_violation);

  bool Cancelled(int64_t run_id);
  // Whether the coordinator abandoned this round of the run (it failed and
  // will be retried, or the run fails).
  bool RoundAbandoned(int64_t run_id, int32_t round);
  // Why a secure-aggregation wait for `run_id` begun on `connection` must
  // end: Cancelled for a cancelled run or abandoned round, Unavailable when
  // stopping or when that connection ended.
  absl::Status SecAggAbortReason(int64_t run_id, int32_t round, int64_t connection);

  const SiteSessionOptions options_;
  SiteWorker& worker_;
  CoordinatorLink& link_;
  Env& env_;
  const Clock& clock_;
  std::atomic<bool> stop_{false};
  AuditHeadKeeper audit_heads_;  // the task thread's only

  absl::Mutex mu_;
  std::deque<QueuedTask> tasks_ ABSL_GUARDED_BY(mu_);
  std::set<int64_t> cancelled_runs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int32_t> abandoned_rounds_ ABSL_GUARDED_BY(mu_);  // run -> round
  int64_t connection_ ABSL_GUARDED_BY(mu_) = 0;                       // counts connections
  bool connected_ ABSL_GUARDED_BY(mu_) = false;

  SiteSecAgg secagg_;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_SESSION_H_
