// The one place where absl::Status and grpc::Status meet. Codes map one to
// one; messages pass through unchanged.
#ifndef FEDMI_COMMON_RPC_GRPC_STATUS_H_
#define FEDMI_COMMON_RPC_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace fedmi {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RPC_GRPC_STATUS_H_
