#include "common/rpc/grpc_status.h"
#include "common/tensor_codec.h"
#include "coordinator/grpc_services.h"

namespace fedmi {
namespace {

// Until mutual TLS assigns roles from certificates, whoever reaches the
// admin port over --insecure transport is the administrator.
Caller AdminCaller(grpc::ServerContext* context) { return Caller{"admin", Role::kAdmin}; }

bool IsTerminal(const std::string& state) {
  return state == "done" || state == "failed" || state == "aborted";
}

}  // namespace

grpc::Status GrpcAdminService::StartRun(grpc::ServerContext* context,
                                        const v1::StartRunRequest* request,
                                        v1::StartRunResponse* response) {
  auto run_id = federation_->StartRun(AdminCaller(context), request->spec());
  if (!run_id.ok()) return ToGrpcStatus(run_id.status());
  response->set_run_id(*run_id);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::GetRun(grpc::ServerContext* context, const v1::RunRef* request,
                                      v1::RunStatus* response) {
  auto status = federation_->GetRun(request->run_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *response = *std::move(status);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::WatchRun(grpc::ServerContext* context, const v1::RunRef* request,
                                        grpc::ServerWriter<v1::RunStatus>* writer) {
  uint64_t version = federation_->version();
  std::string last_sent;
  while (!context->IsCancelled()) {
    auto status = federation_->GetRun(request->run_id());
    if (!status.ok()) return ToGrpcStatus(status.status());
    std::string serialized = status->SerializeAsString();
    if (serialized != last_sent) {
      if (!writer->Write(*status)) return grpc::Status::OK;
      last_sent = std::move(serialized);
    }
    if (IsTerminal(status->state())) return grpc::Status::OK;
    federation_->WaitForChange(&version, absl::Seconds(1));
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
}

grpc::Status GrpcAdminService::ListRuns(grpc::ServerContext* context,
                                        const v1::ListRunsRequest* request,
                                        v1::ListRunsResponse* response) {
  auto runs = federation_->ListRuns();
  if (!runs.ok()) return ToGrpcStatus(runs.status());
  for (auto& run : *runs) *response->add_runs() = std::move(run);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::AbortRun(grpc::ServerContext* context,
                                        const v1::AbortRunRequest* request,
                                        v1::AbortRunResponse* response) {
  return ToGrpcStatus(
      federation_->AbortRun(AdminCaller(context), request->run_id(), request->reason()));
}

grpc::Status GrpcAdminService::ListSites(grpc::ServerContext* context,
                                         const v1::ListSitesRequest* request,
                                         v1::ListSitesResponse* response) {
  auto sites = federation_->ListSites();
  if (!sites.ok()) return ToGrpcStatus(sites.status());
  for (auto& site : *sites) *response->add_sites() = std::move(site);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::ExportModel(grpc::ServerContext* context,
                                           const v1::ExportModelRequest* request,
                                           grpc::ServerWriter<v1::TensorChunk>* writer) {
  v1::ModelRef ref;
  ref.set_run_id(request->run_id());
  ref.set_round(request->latest() ? -1 : request->round());
  std::string sha256;
  int32_t round = 0;
  auto path = federation_->ModelPath(ref, &sha256, &round);
  if (!path.ok()) return ToGrpcStatus(path.status());
  context->AddInitialMetadata("fedmi-round", std::to_string(round));
  return ToGrpcStatus(StreamBundleFile(
      *path, sha256, [&](const v1::TensorChunk& chunk) { return writer->Write(chunk); }));
}

}  // namespace fedmi
