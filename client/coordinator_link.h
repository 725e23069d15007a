// CoordinatorLink: everything a site's round logic (SiteSession) needs from
// the coordinator, without a transport. GrpcCoordinatorLink is the real one;
// tests use fakes that record what the site sends and play the coordinator.
//
// Implementations are thread-safe: the session's task thread and the
// daemon's heartbeat send concurrently. Failures are Status values with the
// transport's code (Unavailable for a lost connection); callers add which
// run and round they concern.
#ifndef FEDMI_CLIENT_COORDINATOR_LINK_H_
#define FEDMI_CLIENT_COORDINATOR_LINK_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

class CoordinatorLink {
 public:
  virtual ~CoordinatorLink() = default;

  // Best effort, on the site's control stream: a message lost with the
  // connection is recovered by the coordinator's deadline for the task.
  virtual void Send(const v1::SiteMessage& message) = 0;

  // The model bundle that `ref` names.
  virtual absl::StatusOr<TensorBundle> Download(const v1::ModelRef& ref) = 0;

  // Uploads `bundle` with `metadata`; returns the coordinator's receipt
  // (its signature is empty when the coordinator does not sign receipts).
  virtual absl::StatusOr<v1::UploadReceipt> Upload(const v1::UpdateMetadata& metadata,
                                                   const TensorBundle& bundle) = 0;
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_COORDINATOR_LINK_H_
