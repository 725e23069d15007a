#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/log.h"
#include "common/rpc/grpc_status.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/grpc_services.h"
#include "coordinator/phase_times.h"

namespace fedmi {
namespace {

// A site's outbound queue. The core pushes without blocking; the Connect
// handler's thread drains it onto the stream.
class QueuedSiteChannel : public SiteChannel {
 public:
  bool Send(const v1::CoordinatorMessage& message) override {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    queue_.push_back(message);
    return true;
  }
  void Close(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    close_status_ = status;
  }
  // Waits up to `timeout` for a message; false when there is none.
  bool Next(v1::CoordinatorMessage* message, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (queue_.empty()) return false;
    *message = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }
  bool closed() {
    absl::MutexLock lock(&mu_);
    return closed_ && queue_.empty();
  }
  bool open() override {
    absl::MutexLock lock(&mu_);
    return !closed_;
  }
  absl::Status close_status() {
    absl::MutexLock lock(&mu_);
    return close_status_;
  }

 private:
  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::Status GrpcFederationService::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::SiteMessage>* stream) {
  v1::SiteMessage first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "stream closed before hello");
  }
  if (first.kind_case() != v1::SiteMessage::kHello) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message on a Connect stream must be hello");
  }
  auto identified = authenticator_->Identify(context, PartyRole::kSite, first.hello().site());
  if (!identified.ok()) return ToGrpcStatus(identified.status());
  const Caller caller = *identified;
  auto channel = std::make_shared<QueuedSiteChannel>();
  auto session = federation_->SiteConnected(caller, first.hello(), channel);
  if (!session.ok()) {
    FEDMI_LOG(WARNING) << "refused site '" << caller.name << "': " << session.status().message();
    return ToGrpcStatus(session.status());
  }
  FEDMI_LOG(INFO) << "site '" << caller.name << "' connected (" << context->peer() << ")";

  std::thread reader([&]() {
    v1::SiteMessage message;
    while (stream->Read(&message)) {
      absl::Status status = federation_->OnSiteMessage(caller, message);
      if (!status.ok()) {
        FEDMI_LOG(WARNING) << "site '" << caller.name << "': " << status.message();
      }
    }
    channel->Close(absl::OkStatus());
  });
  v1::CoordinatorMessage message;
  while (!context->IsCancelled() && !channel->closed()) {
    if (!channel->Next(&message, absl::Milliseconds(500))) continue;
    if (!stream->Write(message)) break;
  }
  // Cancelling below is the only way to unblock the reader, and it hides the
  // status from the site; so say why first.
  const absl::Status closed = channel->close_status();
  if (!closed.ok() && !context->IsCancelled()) {
    v1::CoordinatorMessage closing;
    closing.mutable_closing()->set_code(static_cast<int>(closed.code()));
    closing.mutable_closing()->set_reason(std::string(closed.message()));
    stream->Write(closing);
  }
  context->TryCancel();
  reader.join();
  federation_->SiteDisconnected(caller.name, *session);
  FEDMI_LOG(INFO) << "site '" << caller.name << "' disconnected";
  return ToGrpcStatus(channel->close_status());
}

grpc::Status GrpcFederationService::DownloadModel(grpc::ServerContext* context,
                                                  const v1::ModelRef* request,
                                                  grpc::ServerWriter<v1::TensorChunk>* writer) {
  auto caller = authenticator_->Identify(context, PartyRole::kSite);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // Insecure sites are anonymous here; with TLS only active sites download.
  if (caller->role != PartyRole::kSite || !caller->name.empty()) {
    if (absl::Status allowed = federation_->AuthorizeSite(*caller); !allowed.ok()) {
      return ToGrpcStatus(allowed);
    }
  }
  std::string sha256;
  auto path = federation_->ModelPath(*request, &sha256);
  if (!path.ok()) return ToGrpcStatus(path.status());
  PhaseTimer timer(&federation_->phase_times(), UpdatePhase::kModelSend);
  return ToGrpcStatus(StreamBundleFile(*path, sha256, [&](const v1::TensorChunk& chunk) {
    if (!writer->Write(chunk)) return false;
    CountSentBytes(transfer_, SentStream::kModelDownload, chunk.ByteSizeLong());
    return true;
  }));
}

grpc::Status GrpcFederationService::UploadUpdate(grpc::ServerContext* context,
                                                 grpc::ServerReader<v1::UploadMessage>* reader,
                                                 v1::UploadReceipt* receipt) {
  v1::UploadMessage message;
  if (!reader->Read(&message) || message.payload_case() != v1::UploadMessage::kMetadata) {
    // Malformed bytes end the stream here too. With TLS the certificate
    // still names who sent them, for the audit log.
    const absl::Status refused =
        absl::InvalidArgumentError("an upload must start with its metadata");
    auto identified = authenticator_->Identify(context, PartyRole::kSite);
    if (identified.ok()) {
      federation_->RecordUploadRefused(*identified, v1::UpdateMetadata(), refused);
    }
    return ToGrpcStatus(refused);
  }
  const v1::UpdateMetadata metadata = message.metadata();
  auto caller = authenticator_->Identify(context, PartyRole::kSite, metadata.site());
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto session = federation_->OpenUpload(*caller, metadata);
  if (!session.ok()) return ToGrpcStatus(session.status());
  PhaseTimes& phases = federation_->phase_times();
  while (true) {
    const auto reading = PhaseTimes::Clock::now();
    const bool read = reader->Read(&message);
    phases.Add(UpdatePhase::kReceive, PhaseTimes::Clock::now() - reading);
    if (!read) break;
    if (absl::Status status = (*session)->Add(message); !status.ok()) return ToGrpcStatus(status);
  }
  if (context->IsCancelled()) return ToGrpcStatus((*session)->Cancel());
  auto accepted = (*session)->Finish();
  if (!accepted.ok()) return ToGrpcStatus(accepted.status());
  *receipt = *std::move(accepted);
  return grpc::Status::OK;
}

}  // namespace fedmi
