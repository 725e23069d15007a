// Thin gRPC adapters over Federation: they translate protobuf and gRPC status
// to and from the core and hold no state of their own. Only the
// coordinator's main uses them.
#ifndef FEDMI_COORDINATOR_GRPC_SERVICES_H_
#define FEDMI_COORDINATOR_GRPC_SERVICES_H_

#include "coordinator/federation.h"
#include "fedmi/v1/admin.grpc.pb.h"
#include "fedmi/v1/federation.grpc.pb.h"

namespace fedmi {

class GrpcFederationService final : public v1::Federation::Service {
 public:
  explicit GrpcFederationService(Federation* federation) : federation_(federation) {}

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::SiteMessage>* stream) override;
  grpc::Status DownloadModel(grpc::ServerContext* context, const v1::ModelRef* request,
                             grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status UploadUpdate(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadMessage>* reader,
                            v1::UploadReceipt* receipt) override;

 private:
  Federation* federation_;
};

class GrpcAdminService final : public v1::Admin::Service {
 public:
  explicit GrpcAdminService(Federation* federation) : federation_(federation) {}

  grpc::Status StartRun(grpc::ServerContext* context, const v1::StartRunRequest* request,
                        v1::StartRunResponse* response) override;
  grpc::Status GetRun(grpc::ServerContext* context, const v1::RunRef* request,
                      v1::RunStatus* response) override;
  grpc::Status WatchRun(grpc::ServerContext* context, const v1::RunRef* request,
                        grpc::ServerWriter<v1::RunStatus>* writer) override;
  grpc::Status ListRuns(grpc::ServerContext* context, const v1::ListRunsRequest* request,
                        v1::ListRunsResponse* response) override;
  grpc::Status AbortRun(grpc::ServerContext* context, const v1::AbortRunRequest* request,
                        v1::AbortRunResponse* response) override;
  grpc::Status ListSites(grpc::ServerContext* context, const v1::ListSitesRequest* request,
                         v1::ListSitesResponse* response) override;
  grpc::Status ExportModel(grpc::ServerContext* context, const v1::ExportModelRequest* request,
                           grpc::ServerWriter<v1::TensorChunk>* writer) override;

 private:
  Federation* federation_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_GRPC_SERVICES_H_
