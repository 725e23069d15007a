#include "common/rpc/bundle_stream.h"

#include "common/base/large_buffer.h"
#include "common/base/status.h"
#include "common/rpc/grpc_status.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {

absl::StatusOr<TensorBundle> ReceiveBundle(grpc::ClientContext* context,
                                           grpc::ClientReaderInterface<v1::TensorChunk>* reader,
                                           const std::string& what) {
  TensorBundle bundle;
  MemoryBodySink sink(&bundle.body);
  BundleStreamReader::Options options;
  options.what = what;
  BundleStreamReader stream(options, &sink);
  v1::TensorChunk chunk;
  absl::Status decode_status;
  while (reader->Read(&chunk)) {
    decode_status = stream.Add(chunk);
    if (!decode_status.ok()) {
      context->TryCancel();
      break;
    }
    if (bundle.body.capacity() == 0 && stream.has_header()) {
      // The header's size is the sender's claim: when it cannot be held,
      // the body grows as bytes really arrive instead.
      (void)ReserveLargeBuffer(&bundle.body, TotalBytes(stream.specs()));
    }
  }
  const absl::Status rpc_status = FromGrpcStatus(reader->Finish());
  // After a cancel the call's own status only says Cancelled.
  RETURN_IF_ERROR(decode_status);
  RETURN_IF_ERROR(rpc_status);
  RETURN_IF_ERROR(stream.Finish());
  bundle.specs = stream.specs();
  return bundle;
}

absl::Status UploadBundle(grpc::ClientWriterInterface<v1::UploadMessage>* writer,
                          const v1::UpdateMetadata& metadata, const TensorBundle& bundle) {
  v1::UploadMessage message;
  *message.mutable_metadata() = metadata;
  if (writer->Write(message)) {
    (void)StreamBundleInto(bundle, message.mutable_chunk(), [&] { return writer->Write(message); });
  }
  writer->WritesDone();
  return FromGrpcStatus(writer->Finish());
}

}  // namespace fedmi
