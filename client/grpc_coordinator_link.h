// GrpcCoordinatorLink: CoordinatorLink over the Federation service. Send
// writes to the site's current Connect stream (SiteDaemon attaches it for
// the stream's lifetime); Download and Upload are their own streaming calls
// on the stub.
//
// Thread-safe: one writer at a time on the stream. The stub is not owned and
// must outlive the link.
#ifndef FEDMI_CLIENT_GRPC_COORDINATOR_LINK_H_
#define FEDMI_CLIENT_GRPC_COORDINATOR_LINK_H_

#include "absl/synchronization/mutex.h"
#include "client/coordinator_link.h"
#include "fedmi/v1/federation.grpc.pb.h"

namespace fedmi {

class GrpcCoordinatorLink : public CoordinatorLink {
 public:
  using Stream = grpc::ClientReaderWriter<v1::SiteMessage, v1::CoordinatorMessage>;

  explicit GrpcCoordinatorLink(v1::Federation::Stub& stub) : stub_(stub) {}

  // Messages go to `stream` until Detach(); without one they are dropped.
  void Attach(Stream* stream);
  // Returns once no Send is writing: the stream may then be finished.
  void Detach();

  void Send(const v1::SiteMessage& message) override;
  absl::StatusOr<TensorBundle> Download(const v1::ModelRef& ref) override;
  absl::StatusOr<v1::UploadReceipt> Upload(const v1::UpdateMetadata& metadata,
                                           const TensorBundle& bundle) override;

 private:
  v1::Federation::Stub& stub_;
  absl::Mutex write_mu_;
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_GRPC_COORDINATOR_LINK_H_
