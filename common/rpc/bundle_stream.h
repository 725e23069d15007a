// Client side of the streamed tensor-bundle RPCs: receiving a bundle sent as
// TensorChunk messages, and uploading one as UploadMessage messages. Both
// functions block until the call finishes; they are as thread-safe as the
// reader or writer they are given, which they do not own.
#ifndef FEDMI_COMMON_RPC_BUNDLE_STREAM_H_
#define FEDMI_COMMON_RPC_BUNDLE_STREAM_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/federation.pb.h"
#include "fedmi/v1/tensor.pb.h"

namespace fedmi {

// Reads every chunk from `reader`, then finishes the call. `what` names the
// bundle in decode errors ("model", "global model"). A chunk that does not
// decode cancels the call through `context` and its error is returned;
// otherwise a failed call returns its gRPC status converted by
// FromGrpcStatus, message unchanged, and then a stream that ends short or
// corrupt returns DataLoss or InvalidArgument.
absl::StatusOr<TensorBundle> ReceiveBundle(grpc::ClientContext* context,
                                           grpc::ClientReaderInterface<v1::TensorChunk>* reader,
                                           const std::string& what);

// Writes `metadata`, then `bundle` as chunks, then finishes the call and
// returns its status converted by FromGrpcStatus. A refusal mid-stream shows
// up there: the failed write itself says little, so writing stops quietly.
absl::Status UploadBundle(grpc::ClientWriterInterface<v1::UploadMessage>* writer,
                          const v1::UpdateMetadata& metadata, const TensorBundle& bundle);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RPC_BUNDLE_STREAM_H_
