#include "client/site_daemon.h"

#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/rpc/bundle_stream.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"

namespace fedmi {

SiteDaemon::SiteDaemon(SiteDaemonOptions options, SiteWorker* worker)
    : options_(std::move(options)), worker_(worker) {}

SiteDaemon::~SiteDaemon() { Stop(); }

void SiteDaemon::Stop() {
  stop_ = true;
  absl::MutexLock lock(&mu_);
  if (context_ != nullptr) context_->TryCancel();
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
      result = absl::Status(status.code(), absl::StrCat("the coordinator at ",
                                                        options_.coordinator,
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
      result = absl::UnavailableError(absl::StrCat("giving up on coordinator ",
                                                   options_.coordinator, ": ", status.message()));
      break;
    }
    // Full jitter keeps many sites from reconnecting in lockstep.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    absl::Duration wait = backoff * jitter(random);
    FEDMI_LOG(WARNING) << "connection to " << options_.coordinator << " ended ("
                       << status.message() << "); retrying in "
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
  {
    absl::MutexLock lock(&mu_);
    stream_ = stream.get();
    context_ = &context;
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
        absl::MutexLock lock(&mu_);
        cancelled_runs_.insert(message.cancel().run_id());
        FEDMI_LOG(INFO) << "run " << message.cancel().run_id()
                        << " cancelled: " << message.cancel().reason();
        break;
      }
      default: {
        absl::MutexLock lock(&mu_);
        tasks_.push_back(message);
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
    v1::CoordinatorMessage task;
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

void SiteDaemon::Execute(const v1::CoordinatorMessage& task) {
  switch (task.kind_case()) {
    case v1::CoordinatorMessage::kInit: return RunInit(task.init());
    case v1::CoordinatorMessage::kTrain: return RunTrain(task.train());
    case v1::CoordinatorMessage::kEval: return RunEval(task.eval());
    default: return;
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

void SiteDaemon::RunTrain(const v1::TrainTask& task) {
  if (Cancelled(task.run_id())) return;
  const absl::Time started = absl::Now();
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(worker_->CheckTask(task.spec()));
    ASSIGN_OR_RETURN(TensorBundle global, Download(task.base()));
    ASSIGN_OR_RETURN(LocalUpdate update,
                     worker_->Train(task.run_id(), task.round(), task.spec(), global));
    if (Cancelled(task.run_id())) return absl::OkStatus();
    v1::UpdateMetadata metadata;
    metadata.set_run_id(task.run_id());
    metadata.set_round(task.round());
    metadata.set_site(options_.site);
    metadata.set_examples(update.examples);
    *metadata.mutable_train_metrics() = update.train_metrics;
    RETURN_IF_ERROR(Upload(metadata, update.weights));
    FEDMI_LOG(INFO) << "run " << task.run_id() << " round " << task.round() << ": trained on "
                    << update.examples << " examples, loss " << update.train_metrics.loss()
                    << ", in " << absl::FormatDuration(absl::Trunc(absl::Now() - started,
                                                                   absl::Milliseconds(10)));
    return absl::OkStatus();
  }();
  if (!status.ok()) ReportFailure(task.run_id(), task.round(), status);
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
    if (task.round() >= task.spec().rounds()) worker_->ForgetRun(task.run_id());
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
  return absl::OkStatus();
}

}  // namespace fedmi
