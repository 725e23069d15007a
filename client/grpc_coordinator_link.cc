#include "client/grpc_coordinator_link.h"

#include "common/rpc/bundle_stream.h"

namespace fedmi {

void GrpcCoordinatorLink::Attach(Stream* stream) {
  absl::MutexLock lock(&write_mu_);
  stream_ = stream;
}

void GrpcCoordinatorLink::Detach() {
  absl::MutexLock lock(&write_mu_);
  stream_ = nullptr;
}

void GrpcCoordinatorLink::Send(const v1::SiteMessage& message) {
  absl::MutexLock lock(&write_mu_);
  if (stream_ != nullptr) stream_->Write(message);
}

absl::StatusOr<TensorBundle> GrpcCoordinatorLink::Download(const v1::ModelRef& ref) {
  grpc::ClientContext context;
  auto reader = stub_.DownloadModel(&context, ref);
  return ReceiveBundle(&context, reader.get(), "global model");
}

absl::StatusOr<v1::UploadReceipt> GrpcCoordinatorLink::Upload(const v1::UpdateMetadata& metadata,
                                                              const TensorBundle& bundle) {
  grpc::ClientContext context;
  v1::UploadReceipt receipt;
  auto writer = stub_.UploadUpdate(&context, &receipt);
  absl::Status status = UploadBundle(writer.get(), metadata, bundle);
  if (!status.ok()) return status;
  return receipt;
}

}  // namespace fedmi
