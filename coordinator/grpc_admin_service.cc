#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "common/rpc/grpc_status.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/grpc_services.h"

namespace fedmi {
namespace {

constexpr std::initializer_list<PartyRole> kReaders = {PartyRole::kAdmin, PartyRole::kAuditor};
constexpr std::initializer_list<PartyRole> kAdmins = {PartyRole::kAdmin};

// Moves a list the core returned into a repeated field of the reply.
template <typename T, typename RepeatedField>
grpc::Status ReplyWithList(absl::StatusOr<std::vector<T>> list, RepeatedField* field) {
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& item : *list) *field->Add() = std::move(item);
  return grpc::Status::OK;
}

}  // namespace

absl::StatusOr<Caller> GrpcAdminService::Authorize(grpc::ServerContext* context,
                                                   std::initializer_list<PartyRole> allowed,
                                                   const char* call) {
  return authenticator_->Authorize(context, allowed, call);
}

grpc::Status GrpcAdminService::StartRun(grpc::ServerContext* context,
                                        const v1::StartRunRequest* request,
                                        v1::StartRunResponse* response) {
  auto caller = Authorize(context, kAdmins, "StartRun");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto run_id = federation_->StartRun(*caller, request->spec());
  if (!run_id.ok()) return ToGrpcStatus(run_id.status());
  response->set_run_id(*run_id);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::GetRun(grpc::ServerContext* context, const v1::RunRef* request,
                                      v1::RunStatus* response) {
  if (auto caller = Authorize(context, kReaders, "GetRun"); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  auto status = federation_->GetRun(request->run_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *response = *std::move(status);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::WatchRun(grpc::ServerContext* context, const v1::RunRef* request,
                                        grpc::ServerWriter<v1::RunStatus>* writer) {
  if (auto caller = Authorize(context, kReaders, "WatchRun"); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
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
    if (IsTerminalRunState(status->state())) return grpc::Status::OK;
    federation_->WaitForChange(&version, absl::Seconds(1));
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
}

grpc::Status GrpcAdminService::ListRuns(grpc::ServerContext* context,
                                        const v1::ListRunsRequest* /*request*/,
                                        v1::ListRunsResponse* response) {
  if (auto caller = Authorize(context, kReaders, "ListRuns"); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  return ReplyWithList(federation_->ListRuns(), response->mutable_runs());
}

grpc::Status GrpcAdminService::AbortRun(grpc::ServerContext* context,
                                        const v1::AbortRunRequest* request,
                                        v1::AbortRunResponse* /*response*/) {
  auto caller = Authorize(context, kAdmins, "AbortRun");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(federation_->AbortRun(*caller, request->run_id(), request->reason()));
}

grpc::Status GrpcAdminService::RevokeSite(grpc::ServerContext* context,
                                          const v1::RevokeSiteRequest* request,
                                          v1::RevokeSiteResponse* /*response*/) {
  auto caller = Authorize(context, kAdmins, "RevokeSite");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(federation_->RevokeSite(*caller, request->site(), request->reason()));
}

grpc::Status GrpcAdminService::ListSites(grpc::ServerContext* context,
                                         const v1::ListSitesRequest* /*request*/,
                                         v1::ListSitesResponse* response) {
  if (auto caller = Authorize(context, kReaders, "ListSites"); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  return ReplyWithList(federation_->ListSites(), response->mutable_sites());
}

grpc::Status GrpcAdminService::ExportModel(grpc::ServerContext* context,
                                           const v1::ExportModelRequest* request,
                                           grpc::ServerWriter<v1::TensorChunk>* writer) {
  auto caller = Authorize(context, kAdmins, "ExportModel");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  v1::ModelRef ref;
  ref.set_run_id(request->run_id());
  ref.set_round(request->latest() ? -1 : request->round());
  std::string sha256;
  int32_t round = 0;
  auto path = federation_->ModelPath(ref, &sha256, &round);
  if (!path.ok()) return ToGrpcStatus(path.status());
  context->AddInitialMetadata("fedmi-round", std::to_string(round));
  absl::Status streamed = StreamBundleFile(
      *path, sha256, [&](const v1::TensorChunk& chunk) { return writer->Write(chunk); });
  if (streamed.ok())
    federation_->RecordExport(*caller, request->run_id(), round, HexEncode(sha256));
  return ToGrpcStatus(streamed);
}

grpc::Status GrpcAuditService::ListEntries(grpc::ServerContext* context,
                                           const v1::AuditQuery* request,
                                           grpc::ServerWriter<v1::AuditEntry>* writer) {
  auto caller = authenticator_->Authorize(context, kReaders, "ListAuditEntries");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto entries = audit_->List(*request);
  if (!entries.ok()) return ToGrpcStatus(entries.status());
  for (const auto& entry : *entries) {
    if (!writer->Write(entry)) break;
  }
  return grpc::Status::OK;
}

grpc::Status GrpcAuditService::GetInfo(grpc::ServerContext* context,
                                       const v1::AuditInfoRequest* /*request*/,
                                       v1::AuditInfo* response) {
  auto caller = authenticator_->Authorize(context, kReaders, "GetAuditInfo");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto info = audit_->Info();
  if (!info.ok()) return ToGrpcStatus(info.status());
  *response = *std::move(info);
  return grpc::Status::OK;
}

}  // namespace fedmi
