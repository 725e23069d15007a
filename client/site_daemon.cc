#include "client/site_daemon.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit.h"
#include "common/base/env.h"
#include "common/base/fault_injection.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/rpc/bundle_stream.h"
#include "common/rpc/grpc_status.h"
#include "common/secagg/secagg_participant.h"

namespace fedmi {
namespace {

absl::Status SecAggError(const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("secure aggregation: ", status.message()));
}

std::string RoundName(int64_t run_id, int32_t round) {
  return absl::StrCat("run ", run_id, " round ", round);
}

// The coordinator always sets a positive round timeout; 3600 s is its default.
absl::Duration SecAggTimeout(const v1::RunSpec& spec) {
  return absl::Seconds(spec.round_timeout_s() > 0 ? spec.round_timeout_s() : 3600);
}

}  // namespace

SiteDaemon::SiteDaemon(SiteDaemonOptions options, SiteWorker* worker)
    : options_(std::move(options)), worker_(worker) {}

SiteDaemon::~SiteDaemon() { Stop(); }

void SiteDaemon::Stop() {
  stop_ = true;
  {
    absl::MutexLock lock(&mu_);
    if (context_ != nullptr) context_->TryCancel();
  }
  secagg_inbox_.Wake();
}

absl::Status SiteDaemon::Run() {
  auto channel = MakeChannel(options_.coordinator, options_.transport);
  if (!channel.ok()) return channel.status();
  channel_ = *channel;
  stub_ = v1::Federation::NewStub(channel_);

  std::thread worker([this] { WorkerLoop(); });
  std::mt19937_64 random(std::random_device{}());
  absl::Duration backoff = absl::Milliseconds(500);
  absl::Time unreachable_since = absl::Now();
  absl::Status result = absl::OkStatus();
  while (!stop_) {
    const absl::Time started = absl::Now();
    absl::Status status = RunSession();
    if (stop_) break;
    // Retrying cannot fix these: a revoked or unknown certificate, a name the
    // coordinator refuses. Stop and say why.
    if (status.code() == absl::StatusCode::kPermissionDenied ||
        status.code() == absl::StatusCode::kUnauthenticated ||
        status.code() == absl::StatusCode::kInvalidArgument) {
      result = absl::Status(status.code(), absl::StrCat("the coordinator at ", options_.coordinator,
                                                        " refused this site: ", status.message()));
      break;
    }
    if (absl::Now() - started > absl::Seconds(10)) {
      // The session was healthy for a while: start backing off afresh.
      backoff = absl::Milliseconds(500);
      unreachable_since = absl::Now();
    }
    if (options_.give_up_after > absl::ZeroDuration() &&
        absl::Now() - unreachable_since > options_.give_up_after) {
      result = absl::UnavailableError(
          absl::StrCat("giving up on coordinator ", options_.coordinator, ": ", status.message()));
      break;
    }
    // Full jitter keeps many sites from reconnecting in lockstep.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    absl::Duration wait = backoff * jitter(random);
    FEDMI_LOG(WARNING) << "connection to " << options_.coordinator << " ended (" << status.message()
                       << "); retrying in "
                       << absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(100)));
    for (absl::Time until = absl::Now() + wait; absl::Now() < until && !stop_;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  stop_ = true;
  {
    absl::MutexLock lock(&mu_);
    tasks_.clear();
  }
  worker.join();
  return result;
}

absl::Status SiteDaemon::RunSession() {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Connect(&context);
  int64_t session;
  {
    absl::MutexLock lock(&mu_);
    stream_ = stream.get();
    context_ = &context;
    session = ++session_;
  }
  v1::SiteMessage hello;
  hello.mutable_hello()->set_site(options_.site);
  hello.mutable_hello()->set_train_examples(worker_->train_examples());
  hello.mutable_hello()->set_val_examples(worker_->val_examples());
  hello.mutable_hello()->set_version("0.1.0");
  SendToCoordinator(hello);

  std::atomic<bool> session_over{false};
  std::thread heartbeat([&] {
    absl::Time next = absl::Now() + options_.heartbeat;
    while (!session_over && !stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (absl::Now() < next) continue;
      v1::SiteMessage beat;
      beat.mutable_heartbeat();
      SendToCoordinator(beat);
      next = absl::Now() + options_.heartbeat;
    }
  });

  v1::CoordinatorMessage message;
  absl::Status closing = absl::OkStatus();
  while (closing.ok() && stream->Read(&message)) {
    switch (message.kind_case()) {
      case v1::CoordinatorMessage::kClosing:
        closing = absl::Status(static_cast<absl::StatusCode>(message.closing().code()),
                               message.closing().reason());
        if (closing.ok()) closing = absl::UnavailableError("the coordinator closed the stream");
        break;
      case v1::CoordinatorMessage::kWelcome:
        FEDMI_LOG(INFO) << "connected to " << options_.coordinator << " as site '"
                        << message.welcome().site() << "'";
        break;
      case v1::CoordinatorMessage::kCancel: {
        const v1::CancelTask& cancel = message.cancel();
        if (cancel.round() != 0) {
          {
            absl::MutexLock lock(&mu_);
            abandoned_rounds_[cancel.run_id()] = cancel.round();
          }
          FEDMI_LOG(INFO) << RoundName(cancel.run_id(), cancel.round())
                          << " abandoned by the coordinator: " << cancel.reason();
          secagg_inbox_.ForgetRound(cancel.run_id(), cancel.round());
        } else {
          {
            absl::MutexLock lock(&mu_);
            cancelled_runs_.insert(cancel.run_id());
          }
          FEDMI_LOG(INFO) << "run " << cancel.run_id() << " cancelled: " << cancel.reason();
          secagg_inbox_.ForgetRun(cancel.run_id());
        }
        secagg_inbox_.Wake();
        break;
      }
      case v1::CoordinatorMessage::kPeerKeys:
      case v1::CoordinatorMessage::kRelayedShares: {
        const bool peer_keys = message.has_peer_keys();
        const int64_t run_id =
            peer_keys ? message.peer_keys().run_id() : message.relayed_shares().run_id();
        const int32_t round =
            peer_keys ? message.peer_keys().round() : message.relayed_shares().round();
        if (Cancelled(run_id)) break;
        if (!secagg_inbox_.Put(message)) {
          FEDMI_LOG(WARNING) << RoundName(run_id, round) << ": secure aggregation: ignored "
                             << (peer_keys ? "peer keys" : "relayed shares")
                             << " for a round already passed or already received";
        }
        break;
      }
      default: {
        absl::MutexLock lock(&mu_);
        tasks_.push_back(QueuedTask{session, message});
        break;
      }
    }
  }
  session_over = true;
  heartbeat.join();
  {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    context_ = nullptr;
  }
  // The coordinator drops a site whose session ends from its secure round:
  // what was buffered for it is of no use, and a waiting task gives up.
  secagg_inbox_.Clear();
  secagg_inbox_.Wake();
  absl::MutexLock write_lock(&write_mu_);
  if (!closing.ok()) {
    context.TryCancel();
    stream->Finish();
    return closing;
  }
  return FromGrpcStatus(stream->Finish());
}

void SiteDaemon::SendToCoordinator(const v1::SiteMessage& message) {
  absl::MutexLock write_lock(&write_mu_);
  Stream* stream = nullptr;
  {
    absl::MutexLock lock(&mu_);
    stream = stream_;
  }
  // A lost message is recovered by the coordinator's deadline for the task.
  if (stream != nullptr) stream->Write(message);
}

bool SiteDaemon::Cancelled(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  return cancelled_runs_.count(run_id) > 0;
}

void SiteDaemon::WorkerLoop() {
  while (!stop_) {
    // Here rather than in the reader: a participant may be in use by a task.
    DropCancelledParticipants();
    QueuedTask task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !tasks_.empty() || stop_.load();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
      if (tasks_.empty()) continue;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    Execute(task);
  }
}

void SiteDaemon::Execute(const QueuedTask& task) {
  const v1::CoordinatorMessage& message = task.message;
  switch (message.kind_case()) {
    case v1::CoordinatorMessage::kInit:
      return RunInit(message.init());
    case v1::CoordinatorMessage::kTrain:
      return RunTrain(message.train(), task.session);
    case v1::CoordinatorMessage::kEval:
      return RunEval(message.eval());
    case v1::CoordinatorMessage::kUnmaskRequest:
      return RunUnmask(message.unmask_request());
    default:
      return;
  }
}

void SiteDaemon::ReportFailure(int64_t run_id, int32_t round, const absl::Status& status) {
  FEDMI_LOG(WARNING) << "run " << run_id << " round " << round << ": " << status.message();
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
  v1::SiteMessage message;
  const bool refused = status.code() == absl::StatusCode::kInvalidArgument ||
                       status.code() == absl::StatusCode::kFailedPrecondition ||
                       status.code() == absl::StatusCode::kPermissionDenied;
  if (refused) {
    message.mutable_refusal()->set_run_id(run_id);
    message.mutable_refusal()->set_round(round);
    message.mutable_refusal()->set_reason(std::string(status.message()));
  } else {
    message.mutable_failure()->set_run_id(run_id);
    message.mutable_failure()->set_round(round);
    message.mutable_failure()->set_reason(std::string(status.message()));
  }
  SendToCoordinator(message);
}

void SiteDaemon::SendTaskFailure(int64_t run_id, int32_t round, const std::string& reason,
                                 bool protocol_violation) {
  v1::SiteMessage message;
  message.mutable_failure()->set_run_id(run_id);
  message.mutable_failure()->set_round(round);
  message.mutable_failure()->set_reason(reason);
  message.mutable_failure()->set_protocol_violation(protocol_violation);
  SendToCoordinator(message);
}

void SiteDaemon::RunInit(const v1::InitTask& task) {
  if (Cancelled(task.run_id())) return;
  FEDMI_LOG(INFO) << "run " << task.run_id() << ": building the initial " << task.spec().model()
                  << " model";
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(TensorBundle model, worker_->BuildInitialModel(task.spec()));
    v1::UpdateMetadata metadata;
    metadata.set_run_id(task.run_id());
    metadata.set_round(0);
    metadata.set_site(options_.site);
    return Upload(metadata, model);
  }();
  if (!status.ok()) ReportFailure(task.run_id(), 0, status);
}

void SiteDaemon::RunTrain(const v1::TrainTask& task, int64_t session) {
  // The coordinator never asks to unmask a round of a run that has moved on.
  DropParticipants(task.run_id(), task.round());
  secagg_inbox_.BeginRound(task.run_id(), task.round());
  {
    // A new task for an abandoned round is its retry: it starts afresh.
    absl::MutexLock lock(&mu_);
    auto abandoned = abandoned_rounds_.find(task.run_id());
    if (abandoned != abandoned_rounds_.end() && abandoned->second <= task.round()) {
      abandoned_rounds_.erase(abandoned);
    }
  }
  secagg_inbox_.ForgetRound(task.run_id(), task.round());
  if (Cancelled(task.run_id())) return;
  const absl::Time started = absl::Now();
  bool violation = false;
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(worker_->CheckTask(task.spec()));
    // Either half alone would upload plaintext weights the run promised to
    // mask, or run a protocol nobody asked this site for.
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
    std::unique_ptr<secagg::SecAggParticipant> participant;
    if (task.has_secagg()) {
      // Keys go out before the download and training, so that the slow
      // part of the round overlaps the coordinator collecting everyone's.
      ASSIGN_OR_RETURN(participant, ShareSecAggSecrets(task, session, &violation));
    }
    ASSIGN_OR_RETURN(TensorBundle global, Download(task.base()));
    ASSIGN_OR_RETURN(LocalUpdate update,
                     worker_->Train(task.run_id(), task.round(), task.spec(), global));
    if (Cancelled(task.run_id()) || RoundAbandoned(task.run_id(), task.round())) {
      return absl::OkStatus();
    }
    v1::UpdateMetadata metadata;
    metadata.set_run_id(task.run_id());
    metadata.set_round(task.round());
    metadata.set_site(options_.site);
    metadata.set_examples(update.examples);
    *metadata.mutable_train_metrics() = update.train_metrics;
    if (participant != nullptr) {
      RETURN_IF_ERROR(UploadMasked(task, session, std::move(participant), global, update, metadata,
                                   &violation));
    } else {
      RETURN_IF_ERROR(Upload(metadata, update.weights));
    }
    FEDMI_LOG(INFO) << "run " << task.run_id() << " round " << task.round() << ": trained on "
                    << update.examples << " examples, loss " << update.train_metrics.loss()
                    << ", in "
                    << absl::FormatDuration(
                           absl::Trunc(absl::Now() - started, absl::Milliseconds(10)));
    return absl::OkStatus();
  }();
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

absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> SiteDaemon::ShareSecAggSecrets(
    const v1::TrainTask& task, int64_t session, bool* violation) {
  const int64_t run_id = task.run_id();
  const int32_t round = task.round();
  const std::string where = absl::StrCat(RoundName(run_id, round), ": secure aggregation: ");
  // A task left over from an earlier session belongs to a round the
  // coordinator has already dropped this site from.
  RETURN_IF_ERROR(SecAggAbortReason(run_id, round, session));
  const TransportOptions& transport = options_.transport;
  if (transport.insecure || transport.key_file.empty() || transport.cert_file.empty() ||
      transport.ca_file.empty()) {
    return absl::FailedPreconditionError(
        "secure aggregation needs this site's certificate and key (mutual TLS); it cannot run "
        "with --insecure");
  }
  // The advertisement is signed with the TLS key, so peers can check it
  // against the certificate the coordinator saw.
  auto read = [](const std::string& path) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> pem = ReadFileToString(path);
    if (!pem.ok()) return SecAggError(pem.status());
    return pem;
  };
  ASSIGN_OR_RETURN(std::string key_pem, read(transport.key_file));
  ASSIGN_OR_RETURN(std::string cert_pem, read(transport.cert_file));
  ASSIGN_OR_RETURN(std::string ca_pem, read(transport.ca_file));
  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> participant =
      secagg::SecAggParticipant::Start(run_id, round, options_.site, task.secagg(), key_pem,
                                       cert_pem, ca_pem);
  if (!participant.ok()) return SecAggError(participant.status());

  absl::StatusOr<v1::KeyAdvertisement> advertisement = (*participant)->Advertisement();
  if (!advertisement.ok()) return SecAggError(advertisement.status());
  v1::SiteMessage advertise;
  *advertise.mutable_key_advertisement() = *std::move(advertisement);
  SendToCoordinator(advertise);
  FEDMI_LOG(INFO) << where << "advertised keys";

  ASSIGN_OR_RETURN(v1::CoordinatorMessage peers,
                   AwaitSecAgg(SecAggInbox::Kind::kPeerKeys, task, session));
  absl::StatusOr<v1::ShareBundle> shares = (*participant)->OnPeerKeys(peers.peer_keys());
  if (!shares.ok()) {
    // A forged or misattributed advertisement: the message names the site.
    *violation = shares.status().code() == absl::StatusCode::kPermissionDenied;
    return SecAggError(shares.status());
  }
  const int neighbours = shares->shares_size();
  v1::SiteMessage share;
  *share.mutable_shares() = *std::move(shares);
  SendToCoordinator(share);
  FEDMI_LOG(INFO) << where << "shared secrets with " << neighbours << " neighbours";
  return participant;
}

absl::Status SiteDaemon::UploadMasked(const v1::TrainTask& task, int64_t session,
                                      std::unique_ptr<secagg::SecAggParticipant> participant,
                                      const TensorBundle& global, const LocalUpdate& update,
                                      const v1::UpdateMetadata& metadata, bool* violation) {
  const std::string where =
      absl::StrCat(RoundName(task.run_id(), task.round()), ": secure aggregation: ");
  // Usually already buffered: the coordinator relays shares while sites train.
  ASSIGN_OR_RETURN(v1::CoordinatorMessage relayed,
                   AwaitSecAgg(SecAggInbox::Kind::kRelayedShares, task, session));
  absl::Status received = participant->OnRelayedShares(relayed.relayed_shares());
  if (!received.ok()) {
    // A share that fails authentication or comes from a non-neighbour; the
    // message names the sender.
    *violation = received.code() == absl::StatusCode::kDataLoss ||
                 received.code() == absl::StatusCode::kPermissionDenied;
    return SecAggError(received);
  }
  // The shares of every site, this one's included, have reached the
  // coordinator (it relays only once all have shared): a crash here is a
  // dropout after sharing and before the masked input.
  CrashIfTestAsks("secagg-before-masked-upload");
  absl::StatusOr<TensorBundle> masked =
      participant->MaskUpdate(global, update.weights, update.examples);
  if (!masked.ok()) return SecAggError(masked.status());
  RETURN_IF_ERROR(Upload(metadata, *masked));
  FEDMI_LOG(INFO) << where << "uploaded masked update (masked towards "
                  << participant->SharingNeighbours().size() << " neighbours)";
  participants_[RoundKey(task.run_id(), task.round())] = std::move(participant);
  return absl::OkStatus();
}

absl::StatusOr<v1::CoordinatorMessage> SiteDaemon::AwaitSecAgg(SecAggInbox::Kind kind,
                                                               const v1::TrainTask& task,
                                                               int64_t session) {
  absl::StatusOr<v1::CoordinatorMessage> message =
      secagg_inbox_.Wait(kind, task.run_id(), task.round(), SecAggTimeout(task.spec()),
                         [&] { return SecAggAbortReason(task.run_id(), task.round(), session); });
  if (!message.ok()) return SecAggError(message.status());
  return message;
}

bool SiteDaemon::RoundAbandoned(int64_t run_id, int32_t round) {
  absl::MutexLock lock(&mu_);
  auto it = abandoned_rounds_.find(run_id);
  return it != abandoned_rounds_.end() && it->second == round;
}

absl::Status SiteDaemon::SecAggAbortReason(int64_t run_id, int32_t round, int64_t session) {
  if (stop_) return absl::UnavailableError("the site is shutting down");
  absl::MutexLock lock(&mu_);
  if (cancelled_runs_.count(run_id) > 0) {
    return absl::CancelledError(absl::StrCat("run ", run_id, " was cancelled"));
  }
  auto abandoned = abandoned_rounds_.find(run_id);
  if (abandoned != abandoned_rounds_.end() && abandoned->second == round) {
    return absl::CancelledError(absl::StrCat(RoundName(run_id, round), " was abandoned"));
  }
  if (stream_ == nullptr || session_ != session) {
    return absl::UnavailableError(
        "the connection to the coordinator ended mid-round, so the coordinator dropped this "
        "site from the round");
  }
  return absl::OkStatus();
}

void SiteDaemon::RunUnmask(const v1::UnmaskRequest& request) {
  const int64_t run_id = request.run_id();
  const int32_t round = request.round();
  if (Cancelled(run_id)) return;
  const std::string where = absl::StrCat(RoundName(run_id, round), ": secure aggregation: ");
  auto it = participants_.find(RoundKey(run_id, round));
  if (it == participants_.end()) {
    const std::string reason =
        absl::StrCat("secure aggregation: this site holds no secure-aggregation state for ",
                     RoundName(run_id, round), " (it may have restarted since its upload)");
    FEDMI_LOG(WARNING) << RoundName(run_id, round) << ": " << reason;
    SendTaskFailure(run_id, round, reason, /*protocol_violation=*/false);
    return;
  }
  // The coordinator asks once per round: whatever comes of this request,
  // the secrets are of no further use and are wiped when this returns.
  std::unique_ptr<secagg::SecAggParticipant> participant = std::move(it->second);
  participants_.erase(it);
  absl::StatusOr<v1::UnmaskResponse> response = participant->OnUnmaskRequest(request);
  if (!response.ok()) {
    const absl::Status error = SecAggError(response.status());
    FEDMI_LOG(WARNING) << RoundName(run_id, round) << ": " << error.message();
    SendTaskFailure(run_id, round, std::string(error.message()), /*protocol_violation=*/false);
    return;
  }
  const int revealed = response->shares_size();
  v1::SiteMessage message;
  *message.mutable_unmask_response() = *std::move(response);
  SendToCoordinator(message);
  FEDMI_LOG(INFO) << where << "revealed " << revealed << " shares";
}

void SiteDaemon::DropParticipants(int64_t run_id, int32_t round) {
  participants_.erase(
      participants_.lower_bound(RoundKey(run_id, std::numeric_limits<int32_t>::min())),
      participants_.lower_bound(RoundKey(run_id, round)));
}

void SiteDaemon::DropCancelledParticipants() {
  if (participants_.empty()) return;
  std::set<int64_t> cancelled;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancelled_runs_;
  }
  for (int64_t run_id : cancelled) {
    DropParticipants(run_id, std::numeric_limits<int32_t>::max());
  }
}

void SiteDaemon::RunEval(const v1::EvalTask& task) {
  if (Cancelled(task.run_id())) return;
  absl::Status status = [&]() -> absl::Status {
    // The site's policy first: a refused run's model is not even fetched.
    RETURN_IF_ERROR(worker_->CheckTask(task.spec()));
    // Synthetic benchmark models have nothing to evaluate; skipping the
    // download keeps the benchmark about aggregation.
    TensorBundle global;
    if (task.spec().model() != "synthetic") {
      ASSIGN_OR_RETURN(global, Download(task.model()));
    }
    ASSIGN_OR_RETURN(v1::Metrics metrics, worker_->Evaluate(task.run_id(), task.spec(), global));
    v1::SiteMessage message;
    message.mutable_eval_report()->set_run_id(task.run_id());
    message.mutable_eval_report()->set_round(task.round());
    *message.mutable_eval_report()->mutable_metrics() = metrics;
    SendToCoordinator(message);
    if (task.round() >= task.spec().rounds()) {
      worker_->ForgetRun(task.run_id());
      DropParticipants(task.run_id(), std::numeric_limits<int32_t>::max());
      secagg_inbox_.ForgetRun(task.run_id());
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) ReportFailure(task.run_id(), task.round(), status);
}

absl::StatusOr<TensorBundle> SiteDaemon::Download(const v1::ModelRef& ref) {
  grpc::ClientContext context;
  auto reader = stub_->DownloadModel(&context, ref);
  absl::StatusOr<TensorBundle> bundle = ReceiveBundle(&context, reader.get(), "global model");
  if (!bundle.ok()) {
    return absl::Status(bundle.status().code(),
                        absl::StrCat("downloading the model of run ", ref.run_id(), " round ",
                                     ref.round(), ": ", bundle.status().message()));
  }
  return bundle;
}

absl::Status SiteDaemon::Upload(const v1::UpdateMetadata& metadata, const TensorBundle& bundle) {
  grpc::ClientContext context;
  v1::UploadReceipt receipt;
  auto writer = stub_->UploadUpdate(&context, &receipt);
  absl::Status status = UploadBundle(writer.get(), metadata, bundle);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("upload for run ", metadata.run_id(), " round ",
                                     metadata.round(), " refused: ", status.message()));
  }
  KeepReceipt(receipt);
  return absl::OkStatus();
}

void SiteDaemon::KeepReceipt(const v1::UploadReceipt& receipt) {
  if (options_.receipts_dir.empty() || receipt.signature().empty()) return;
  // The upload has happened either way; a receipt that cannot be kept only
  // weakens this site's later audit, so it is reported, not fatal.
  std::error_code error;
  std::filesystem::create_directories(options_.receipts_dir, error);
  const std::string path =
      (std::filesystem::path(options_.receipts_dir) / audit::ReceiptFileName(receipt)).string();
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << audit::ReceiptToJson(receipt) << "\n";
    out.flush();
    if (!out) {
      FEDMI_LOG(WARNING) << "cannot write the upload receipt " << temp;
      return;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    FEDMI_LOG(WARNING) << "cannot keep the upload receipt " << path;
  }
}

}  // namespace fedmi
