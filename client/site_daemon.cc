#include "client/site_daemon.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/rpc/grpc_status.h"
#include "common/rpc/name_resolution.h"

namespace fedmi {
namespace {

// Retrying cannot fix these: a revoked or unknown certificate, a name the
// coordinator refuses.
bool IsFinalRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kPermissionDenied ||
         status.code() == absl::StatusCode::kUnauthenticated ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

SiteSessionOptions SessionOptions(const SiteDaemonOptions& options) {
  SiteSessionOptions session;
  session.site = options.site;
  session.identity.insecure = options.transport.insecure;
  session.identity.key_file = options.transport.key_file;
  session.identity.cert_file = options.transport.cert_file;
  session.identity.ca_file = options.transport.ca_file;
  session.identity.crl_file = options.transport.crl_file;
  session.receipts_dir = options.receipts_dir;
  return session;
}

}  // namespace

SiteDaemon::SiteDaemon(SiteDaemonOptions options, SiteWorker& worker, FaultHook& faults)
    : options_(std::move(options)), worker_(worker), faults_(faults) {}

SiteDaemon::~SiteDaemon() { Stop(); }

void SiteDaemon::Stop() {
  stop_ = true;
  absl::MutexLock lock(&mu_);
  if (context_ != nullptr) context_->TryCancel();
  if (session_ != nullptr) session_->Stop();
}

absl::Status SiteDaemon::Run() {
  auto channel = MakeChannel(options_.coordinator, options_.transport);
  if (!channel.ok()) return channel.status();
  stub_ = v1::Federation::NewStub(*channel);
  link_ = std::make_unique<GrpcCoordinatorLink>(*stub_);
  SiteSession* session;
  {
    absl::MutexLock lock(&mu_);
    session_ = std::make_unique<SiteSession>(SessionOptions(options_), worker_, *link_,
                                             *Env::Default(), faults_, clock_);
    session = session_.get();
  }

  std::thread tasks([session] { session->RunTasks(); });
  std::mt19937_64 random(std::random_device{}());
  absl::Duration backoff = absl::Milliseconds(500);
  absl::Time unreachable_since = absl::Now();
  absl::Status result = absl::OkStatus();
  while (!stop_) {
    const absl::Time started = absl::Now();
    absl::Status status = RunConnection();
    if (stop_) break;
    if (IsFinalRefusal(status)) {
      result = absl::Status(status.code(), absl::StrCat("the coordinator at ", options_.coordinator,
                                                        " refused this site: ", status.message()));
      break;
    }
    if (absl::Now() - started > absl::Seconds(10)) {
      // The connection was healthy for a while: start backing off afresh.
      backoff = absl::Milliseconds(500);
      unreachable_since = absl::Now();
    }
    if (options_.give_up_after > absl::ZeroDuration() &&
        absl::Now() - unreachable_since > options_.give_up_after) {
      result =
          absl::UnavailableError(absl::StrCat("giving up on coordinator ", options_.coordinator,
                                              ": ", ExplainResolutionFailure(status.message())));
      break;
    }
    // Full jitter keeps many sites from reconnecting in lockstep.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    absl::Duration wait = backoff * jitter(random);
    FEDMI_LOG(WARNING) << "connection to " << options_.coordinator << " ended ("
                       << ExplainResolutionFailure(status.message()) << "); retrying in "
                       << absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(100)));
    for (absl::Time until = absl::Now() + wait; absl::Now() < until && !stop_;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  stop_ = true;
  session->Stop();
  tasks.join();
  return result;
}

absl::Status SiteDaemon::RunConnection() {
  SiteSession* session;
  grpc::ClientContext context;
  std::unique_ptr<GrpcCoordinatorLink::Stream> stream = stub_->Connect(&context);
  {
    absl::MutexLock lock(&mu_);
    context_ = &context;
    session = session_.get();
  }
  link_->Attach(stream.get());
  session->Connected();
  v1::SiteMessage hello;
  hello.mutable_hello()->set_site(options_.site);
  hello.mutable_hello()->set_train_examples(worker_.DeclareTrainExamples());
  hello.mutable_hello()->set_val_examples(worker_.val_examples());
  hello.mutable_hello()->set_version("0.1.0");
  link_->Send(hello);

  std::atomic<bool> connection_over{false};
  std::thread heartbeat([&] {
    absl::Time next = absl::Now() + options_.heartbeat;
    while (!connection_over && !stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (absl::Now() < next) continue;
      v1::SiteMessage beat;
      beat.mutable_heartbeat();
      link_->Send(beat);
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
      default:
        session->Deliver(message);
        break;
    }
  }
  connection_over = true;
  heartbeat.join();
  {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }
  link_->Detach();
  session->Disconnected();
  if (!closing.ok()) {
    context.TryCancel();
    stream->Finish();
    return closing;
  }
  return FromGrpcStatus(stream->Finish());
}

}  // namespace fedmi
