#include "client/site_session.h"

#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/runspec/transfer.h"
#include "common/secagg/secagg_participant.h"

namespace fedmi {
namespace {

std::string RoundName(int64_t run_id, int32_t round) {
  return absl::StrCat("run ", run_id, " round ", round);
}

// Whether an error is the site declining the task rather than failing it.
bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kPermissionDenied;
}

// Either half alone would upload plaintext weights the run promised to mask,
// or run a protocol nobody asked this site for.
absl::Status CheckSecAggAgreement(const v1::TrainTask& task) {
  if (task.spec().secure_aggregation() && !task.has_secagg()) {
    return absl::InvalidArgumentError(
        absl::StrCat(RoundName(task.run_id(), task.round()),
                     " asks for secure aggregation but the task carries no secure "
                     "aggregation parameters"));
  }
  if (!task.spec().secure_aggregation() && task.has_secagg()) {
    return absl::InvalidArgumentError(
        absl::StrCat(RoundName(task.run_id(), task.round()),
                     " carries secure aggregation parameters but its run has secure "
                     "aggregation off"));
  }
  return absl::OkStatus();
}

}  // namespace

SiteSession::SiteSession(SiteSessionOptions options, SiteWorker& worker, CoordinatorLink& link,
                         Env& env, FaultHook& faults, const Clock& clock)
    : options_(std::move(options)),
      worker_(worker),
      link_(link),
      env_(env),
      clock_(clock),
      audit_heads_(options_.receipts_dir.empty() || options_.identity.insecure
                       ? ""
                       : audit::HeldHeadsDir(options_.receipts_dir),
                   options_.identity.ca_file, env, clock),
      secagg_(options_.site, options_.identity, link, env, faults) {
  worker_.set_artifact_source([this](int64_t run_id, const std::string& sha256_hex) {
    v1::ModelRef ref;
    ref.set_run_id(run_id);
    ref.set_artifact_sha256(sha256_hex);
    return Download(ref);
  });
}

SiteSession::~SiteSession() { Stop(); }

void SiteSession::Connected() {
  absl::MutexLock lock(&mu_);
  ++connection_;
  connected_ = true;
}

void SiteSession::Disconnected() {
  {
    absl::MutexLock lock(&mu_);
    connected_ = false;
  }
  // What was buffered for the ended connection is of no use, and a waiting
  // task gives up.
  secagg_.inbox().Clear();
  secagg_.inbox().Wake();
}

void SiteSession::Stop() {
  stop_ = true;
  {
    absl::MutexLock lock(&mu_);
    tasks_.clear();
  }
  secagg_.inbox().Wake();
}

void SiteSession::Deliver(const v1::CoordinatorMessage& message) {
  switch (message.kind_case()) {
    case v1::CoordinatorMessage::kCancel:
      return OnCancel(message.cancel());
    case v1::CoordinatorMessage::kPeerKeys:
    case v1::CoordinatorMessage::kRelayedShares: {
      const bool peer_keys = message.has_peer_keys();
      const int64_t run_id =
          peer_keys ? message.peer_keys().run_id() : message.relayed_shares().run_id();
      const int32_t round =
          peer_keys ? message.peer_keys().round() : message.relayed_shares().round();
      if (Cancelled(run_id)) return;
      if (!secagg_.inbox().Put(message)) {
        FEDMI_LOG(WARNING) << RoundName(run_id, round) << ": secure aggregation: ignored "
                           << (peer_keys ? "peer keys" : "relayed shares")
                           << " for a round already passed or already received";
      }
      return;
    }
    case v1::CoordinatorMessage::kInit:
    case v1::CoordinatorMessage::kTrain:
    case v1::CoordinatorMessage::kEval:
    case v1::CoordinatorMessage::kSurvivorSet:
    case v1::CoordinatorMessage::kUnmaskRequest: {
      absl::MutexLock lock(&mu_);
      tasks_.push_back(QueuedTask{connection_, message});
      return;
    }
    default:
      return;
  }
}

void SiteSession::OnCancel(const v1::CancelTask& cancel) {
  if (cancel.round() != 0) {
    {
      absl::MutexLock lock(&mu_);
      abandoned_rounds_[cancel.run_id()] = cancel.round();
    }
    FEDMI_LOG(INFO) << RoundName(cancel.run_id(), cancel.round())
                    << " abandoned by the coordinator: " << cancel.reason();
    secagg_.inbox().ForgetRound(cancel.run_id(), cancel.round());
  } else {
    {
      absl::MutexLock lock(&mu_);
      cancelled_runs_.insert(cancel.run_id());
    }
    FEDMI_LOG(INFO) << "run " << cancel.run_id() << " cancelled: " << cancel.reason();
    secagg_.inbox().ForgetRun(cancel.run_id());
  }
  secagg_.inbox().Wake();
}

bool SiteSession::RunNextTask(absl::Duration wait) {
  // Here rather than in Deliver: a participant may be in use by a task.
  std::set<int64_t> cancelled;
  std::map<int64_t, int32_t> abandoned;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancelled_runs_;
    abandoned = abandoned_rounds_;
  }
  secagg_.DropRuns(cancelled);
  // An abandoned attempt's secrets are wiped now, not when the retry comes.
  for (const auto& [run_id, round] : abandoned) secagg_.DropRound(run_id, round);
  QueuedTask task;
  {
    absl::MutexLock lock(&mu_);
    auto ready = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !tasks_.empty() || stop_.load(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
    if (tasks_.empty() || stop_) return false;
    task = std::move(tasks_.front());
    tasks_.pop_front();
  }
  Execute(task);
  return true;
}

void SiteSession::RunTasks() {
  while (!stop_) RunNextTask(absl::Milliseconds(200));
}

void SiteSession::Execute(const QueuedTask& task) {
  const v1::CoordinatorMessage& message = task.message;
  switch (message.kind_case()) {
    case v1::CoordinatorMessage::kInit:
      return RunInit(message.init());
    case v1::CoordinatorMessage::kTrain:
      // Kept whatever becomes of the task: it is evidence of the log either way.
      KeepAuditHead(message.train().audit_head(), AuditHeadKeeper::Channel::kTask,
                    absl::StrCat("train task ",
                                 RoundName(message.train().run_id(), message.train().round())));
      return RunTrain(message.train(), task.connection);
    case v1::CoordinatorMessage::kEval:
      KeepAuditHead(
          message.eval().audit_head(), AuditHeadKeeper::Channel::kTask,
          absl::StrCat("eval task ", RoundName(message.eval().run_id(), message.eval().round())));
      return RunEval(message.eval());
    case v1::CoordinatorMessage::kSurvivorSet:
      return RunSignSurvivors(message.survivor_set());
    case v1::CoordinatorMessage::kUnmaskRequest:
      return RunUnmask(message.unmask_request());
    default:
      return;
  }
}

void SiteSession::RunInit(const v1::InitTask& task) {
  if (Cancelled(task.run_id())) return;
  FEDMI_LOG(INFO) << "run " << task.run_id() << ": building the initial " << task.spec().model()
                  << " model";
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(TensorBundle model, worker_.BuildInitialModel(task.spec(), task.run_id()));
    v1::UpdateMetadata metadata;
    metadata.set_run_id(task.run_id());
    metadata.set_round(0);
    metadata.set_site(options_.site);
    return Upload(metadata, model);
  }();
  if (!status.ok()) ReportFailure(task.run_id(), 0, status);
}

void SiteSession::RunTrain(const v1::TrainTask& task, int64_t connection) {
  // The coordinator never asks to unmask a round of a run that has moved on.
  secagg_.DropBefore(task.run_id(), task.round());
  secagg_.inbox().BeginRound(task.run_id(), task.round());
  {
    // A new task for an abandoned round is its retry: it starts afresh.
    absl::MutexLock lock(&mu_);
    auto abandoned = abandoned_rounds_.find(task.run_id());
    if (abandoned != abandoned_rounds_.end() && abandoned->second <= task.round()) {
      abandoned_rounds_.erase(abandoned);
    }
  }
  secagg_.inbox().ForgetRound(task.run_id(), task.round());
  if (Cancelled(task.run_id())) return;
  bool violation = false;
  const absl::Status status = TrainRound(task, connection, &violation);
  if (TrainingObserver* observer = worker_.training_observer(); observer != nullptr) {
    observer->OnRoundOutcome(task.run_id(), task.round(), status);
  }
  if (status.ok()) return;
  if (violation) {
    FEDMI_LOG(WARNING) << RoundName(task.run_id(), task.round())
                       << ": protocol violation: " << status.message();
    SendTaskFailure(task.run_id(), task.round(), std::string(status.message()),
                    /*protocol_violation=*/true);
    return;
  }
  ReportFailure(task.run_id(), task.round(), status);
}

absl::Status SiteSession::TrainRound(const v1::TrainTask& task, int64_t connection,
                                     bool* violation) {
  const absl::Time started = clock_.Now();
  RETURN_IF_ERROR(worker_.CheckTask(task.spec()));
  RETURN_IF_ERROR(CheckSecAggAgreement(task));
  auto abort = [&] { return SecAggAbortReason(task.run_id(), task.round(), connection); };
  std::unique_ptr<secagg::SecAggParticipant> participant;
  absl::Duration secagg;  // key exchange, then masking
  if (task.has_secagg()) {
    // Keys go out before the download and training, so that the slow part
    // of the round overlaps the coordinator collecting everyone's.
    const absl::Time sharing = clock_.Now();
    ASSIGN_OR_RETURN(participant,
                     secagg_.ShareSecrets(task, worker_.policy().secagg_floor, abort, violation));
    secagg = clock_.Now() - sharing;
  }
  const absl::Time downloading = clock_.Now();
  ASSIGN_OR_RETURN(TensorBundle global, Download(task.base()));
  const absl::Time training = clock_.Now();
  ASSIGN_OR_RETURN(LocalUpdate update, worker_.Train(task.run_id(), task.round(), task.spec(),
                                                     global, task.dp_clip_norm()));
  const absl::Time uploading = clock_.Now();
  if (Cancelled(task.run_id()) || RoundAbandoned(task.run_id(), task.round())) {
    return absl::OkStatus();
  }
  absl::Duration masking;
  v1::UpdateMetadata metadata;
  metadata.set_run_id(task.run_id());
  metadata.set_round(task.round());
  metadata.set_site(options_.site);
  metadata.set_examples(update.examples);
  metadata.set_dp_epsilon_spent(update.dp_epsilon_spent);
  metadata.set_dp_within_clip(update.dp_within_clip);
  // Beside a masked update, this site's own training metrics would describe
  // it alone; the example count stays, as the weight needs it.
  if (participant == nullptr || worker_.policy().share_training_metrics_with_secagg) {
    *metadata.mutable_train_metrics() = update.train_metrics;
  }
  if (participant != nullptr) {
    // The masked sum covers the tensors the round trains, measured from
    // their global values.
    if (update.weights.specs.size() != global.specs.size()) {
      ASSIGN_OR_RETURN(global, TrainedPart(task.spec(), task.round(), global));
    }
    ASSIGN_OR_RETURN(TensorBundle masked,
                     secagg_.MaskUpdate(task, *participant, global, update.weights, update.examples,
                                        abort, violation));
    masking = clock_.Now() - uploading;
    RETURN_IF_ERROR(Upload(metadata, masked));
    secagg_.KeepForUnmasking(task.run_id(), task.round(), std::move(participant));
  } else {
    RETURN_IF_ERROR(Upload(metadata, update.weights));
  }
  const absl::Time done = clock_.Now();
  RoundPhaseTimes phases;
  phases.secagg = absl::ToDoubleSeconds(secagg + masking);
  phases.download = absl::ToDoubleSeconds(training - downloading);
  phases.training = absl::ToDoubleSeconds(uploading - training);
  phases.upload = absl::ToDoubleSeconds(done - uploading - masking);
  if (TrainingObserver* observer = worker_.training_observer(); observer != nullptr) {
    observer->OnRoundPhases(task.run_id(), task.round(), phases);
  }
  auto rounded = [](double seconds) {
    return absl::FormatDuration(absl::Trunc(absl::Seconds(seconds), absl::Milliseconds(10)));
  };
  // Where a slow round's time went, for operators; `fedmi bench round`
  // reads the same figures from /metrics.
  FEDMI_LOG(INFO) << RoundName(task.run_id(), task.round()) << ": trained on " << update.examples
                  << " examples, loss " << update.train_metrics.loss() << ", in "
                  << rounded(absl::ToDoubleSeconds(done - started)) << " (download "
                  << rounded(phases.download) << ", training " << rounded(phases.training)
                  << (task.has_secagg()
                          ? absl::StrCat(", secure aggregation ", rounded(phases.secagg))
                          : "")
                  << ", upload " << rounded(phases.upload) << ")";
  return absl::OkStatus();
}

void SiteSession::RunEval(const v1::EvalTask& task) {
  if (Cancelled(task.run_id())) return;
  absl::Status status = [&]() -> absl::Status {
    // The site's policy first: a refused run's model is not even fetched.
    RETURN_IF_ERROR(worker_.CheckTask(task.spec()));
    // Synthetic benchmark models have nothing to evaluate; skipping the
    // download keeps the benchmark about aggregation.
    TensorBundle global;
    if (task.spec().model() != "synthetic") {
      ASSIGN_OR_RETURN(global, Download(task.model()));
    }
    ASSIGN_OR_RETURN(v1::Metrics metrics, worker_.Evaluate(task.run_id(), task.spec(), global));
    v1::SiteMessage message;
    message.mutable_eval_report()->set_run_id(task.run_id());
    message.mutable_eval_report()->set_round(task.round());
    *message.mutable_eval_report()->mutable_metrics() = metrics;
    link_.Send(message);
    if (task.round() >= task.spec().rounds()) {
      worker_.ForgetRun(task.run_id());
      secagg_.DropBefore(task.run_id(), std::numeric_limits<int32_t>::max());
      secagg_.inbox().ForgetRun(task.run_id());
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) ReportFailure(task.run_id(), task.round(), status);
}

void SiteSession::RunSignSurvivors(const v1::SurvivorSet& set) {
  if (Cancelled(set.run_id())) return;
  absl::StatusOr<v1::SurvivorSignature> signature = secagg_.SignSurvivors(set);
  v1::SiteMessage message;
  if (signature.ok()) message.mutable_survivor_signature()->Swap(&*signature);
  SendSecAggReply(set.run_id(), set.round(), signature.status(), message);
}

void SiteSession::RunUnmask(const v1::UnmaskRequest& request) {
  if (Cancelled(request.run_id())) return;
  absl::StatusOr<v1::UnmaskResponse> response = secagg_.Reveal(request);
  v1::SiteMessage message;
  if (response.ok()) message.mutable_unmask_response()->Swap(&*response);
  SendSecAggReply(request.run_id(), request.round(), response.status(), message);
}

void SiteSession::SendSecAggReply(int64_t run_id, int32_t round, const absl::Status& status,
                                  const v1::SiteMessage& reply) {
  if (status.ok()) {
    link_.Send(reply);
    return;
  }
  FEDMI_LOG(WARNING) << RoundName(run_id, round) << ": " << status.message();
  // PermissionDenied is the coordinator breaking the protocol: a second,
  // different survivor set, refused signatures, or a request for both
  // secrets of one site.
  SendTaskFailure(run_id, round, std::string(status.message()),
                  status.code() == absl::StatusCode::kPermissionDenied);
}

absl::StatusOr<TensorBundle> SiteSession::Download(const v1::ModelRef& ref) {
  absl::StatusOr<TensorBundle> bundle = link_.Download(ref);
  if (!bundle.ok()) {
    return absl::Status(
        bundle.status().code(),
        absl::StrCat("downloading ",
                     ref.artifact_sha256().empty()
                         ? absl::StrCat("the model of run ", ref.run_id(), " round ", ref.round())
                         : absl::StrCat("artifact ", ShortHash(ref.artifact_sha256()), " of run ",
                                        ref.run_id()),
                     ": ", bundle.status().message()));
  }
  return bundle;
}

absl::Status SiteSession::Upload(const v1::UpdateMetadata& metadata, const TensorBundle& bundle) {
  absl::StatusOr<v1::UploadReceipt> receipt = link_.Upload(metadata, bundle);
  if (!receipt.ok()) {
    return absl::Status(receipt.status().code(),
                        absl::StrCat("upload for run ", metadata.run_id(), " round ",
                                     metadata.round(), " refused: ", receipt.status().message()));
  }
  KeepReceipt(*receipt);
  KeepAuditHead(receipt->audit_head(), AuditHeadKeeper::Channel::kReceipt,
                absl::StrCat("receipt ", RoundName(receipt->run_id(), receipt->round())));
  return absl::OkStatus();
}

void SiteSession::KeepReceipt(const v1::UploadReceipt& receipt) {
  if (options_.receipts_dir.empty() || receipt.signature().empty()) return;
  // The upload has happened either way; a receipt that cannot be kept only
  // weakens this site's later audit, so it is reported, not fatal.
  absl::Status kept = env_.CreateDirs(options_.receipts_dir);
  if (kept.ok()) {
    kept = WriteFileAtomically(
        env_, absl::StrCat(options_.receipts_dir, "/", audit::ReceiptFileName(receipt)),
        absl::StrCat(audit::ReceiptToJson(receipt), "\n"));
  }
  if (!kept.ok()) FEDMI_LOG(WARNING) << "cannot keep the upload receipt: " << kept.message();
}

void SiteSession::KeepAuditHead(const v1::SignedAuditHead& head, AuditHeadKeeper::Channel channel,
                                const std::string& via) {
  absl::Status kept = audit_heads_.Keep(head, channel, via);
  if (absl::IsFailedPrecondition(kept)) {
    FEDMI_LOG(ERROR) << "audit log VIOLATION: " << kept.message();
  } else if (!kept.ok()) {
    FEDMI_LOG(WARNING) << "cannot keep the audit head with " << via << ": " << kept.message();
  }
}

void SiteSession::ReportFailure(int64_t run_id, int32_t round, const absl::Status& status) {
  FEDMI_LOG(WARNING) << RoundName(run_id, round) << ": " << status.message();
  // A lost connection is not the task's fault: the coordinator notices the
  // drop itself and, after a restart, hands the round out again. Reporting
  // it would reach the new coordinator and drop this site from that round.
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kCancelled ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    return;
  }
  // The coordinator turned the upload down (the round moved on, or it was
  // already answered): it knows, and this is no refusal by the site.
  if (absl::StartsWith(status.message(), "upload for run")) return;
  if (!IsRefusal(status)) {
    SendTaskFailure(run_id, round, std::string(status.message()), /*protocol_violation=*/false);
    return;
  }
  v1::SiteMessage message;
  message.mutable_refusal()->set_run_id(run_id);
  message.mutable_refusal()->set_round(round);
  message.mutable_refusal()->set_reason(std::string(status.message()));
  link_.Send(message);
}

void SiteSession::SendTaskFailure(int64_t run_id, int32_t round, const std::string& reason,
                                  bool protocol_violation) {
  v1::SiteMessage message;
  message.mutable_failure()->set_run_id(run_id);
  message.mutable_failure()->set_round(round);
  message.mutable_failure()->set_reason(reason);
  message.mutable_failure()->set_protocol_violation(protocol_violation);
  link_.Send(message);
}

bool SiteSession::Cancelled(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  return cancelled_runs_.count(run_id) > 0;
}

bool SiteSession::RoundAbandoned(int64_t run_id, int32_t round) {
  absl::MutexLock lock(&mu_);
  auto it = abandoned_rounds_.find(run_id);
  return it != abandoned_rounds_.end() && it->second == round;
}

absl::Status SiteSession::SecAggAbortReason(int64_t run_id, int32_t round, int64_t connection) {
  if (stop_) return absl::UnavailableError("the site is shutting down");
  absl::MutexLock lock(&mu_);
  if (cancelled_runs_.count(run_id) > 0) {
    return absl::CancelledError(absl::StrCat("run ", run_id, " was cancelled"));
  }
  auto abandoned = abandoned_rounds_.find(run_id);
  if (abandoned != abandoned_rounds_.end() && abandoned->second == round) {
    return absl::CancelledError(absl::StrCat(RoundName(run_id, round), " was abandoned"));
  }
  if (!connected_ || connection_ != connection) {
    return absl::UnavailableError(
        "the connection to the coordinator ended mid-round, so the coordinator dropped this "
        "site from the round");
  }
  return absl::OkStatus();
}

}  // namespace fedmi
