#include <optional>

#include "common/base/names.h"
#include "common/crypto/sha256.h"
#include "common/rpc/grpc_status.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/grpc_services.h"
#include "coordinator/run_status.h"

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
  auto caller = Authorize(context, kReaders, "WatchRun");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(federation_->WatchRun(
      *caller, request->run_id(),
      [&](const v1::RunStatus& status) { return writer->Write(status); },
      [&] { return context->IsCancelled(); }));
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

grpc::Status GrpcAdminService::Revoke(grpc::ServerContext* context,
                                      const v1::RevokeRequest* request,
                                      v1::RevokeResponse* response) {
  auto caller = Authorize(context, kAdmins, "Revoke");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  std::optional<PartyRole> role;
  if (!request->role().empty()) {
    auto parsed = ParsePartyRole(request->role());
    if (!parsed.ok()) return ToGrpcStatus(parsed.status());
    role = *parsed;
  }
  auto revocation = federation_->Revoke(*caller, request->name(), role, request->reason());
  if (!revocation.ok()) return ToGrpcStatus(revocation.status());
  *response->mutable_revocation() = RevocationOf(*revocation);
  return grpc::Status::OK;
}

grpc::Status GrpcAdminService::ListRevocations(grpc::ServerContext* context,
                                               const v1::ListRevocationsRequest* /*request*/,
                                               v1::ListRevocationsResponse* response) {
  if (auto caller = Authorize(context, kReaders, "ListRevocations"); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  auto revocations = federation_->ListRevocations();
  if (!revocations.ok()) return ToGrpcStatus(revocations.status());
  for (const RevocationRecord& record : *revocations) {
    *response->add_revocations() = RevocationOf(record);
  }
  return grpc::Status::OK;
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
  absl::Status streamed = StreamBundleFile(*path, sha256, [&](const v1::TensorChunk& chunk) {
    if (!writer->Write(chunk)) return false;
    CountSentBytes(transfer_, SentStream::kModelExport, chunk.ByteSizeLong());
    return true;
  });
  if (streamed.ok())
    federation_->RecordExport(*caller, request->run_id(), round, HexEncode(sha256));
  return ToGrpcStatus(streamed);
}

grpc::Status GrpcAdminService::UploadArtifact(grpc::ServerContext* context,
                                              grpc::ServerReader<v1::TensorChunk>* reader,
                                              v1::ArtifactReceipt* receipt) {
  auto caller = Authorize(context, {PartyRole::kAdmin}, "UploadArtifact");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto upload = federation_->OpenArtifactUpload(*caller);
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  v1::TensorChunk chunk;
  while (reader->Read(&chunk)) {
    if (absl::Status status = (*upload)->Add(chunk); !status.ok()) return ToGrpcStatus(status);
  }
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled");
  auto stored = (*upload)->Finish();
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *receipt = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status GrpcAuditService::ListEntries(grpc::ServerContext* context,
                                           const v1::AuditQuery* request,
                                           grpc::ServerWriter<v1::AuditEntry>* writer) {
  auto caller = authenticator_->Authorize(context, kReaders, "ListAuditEntries");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto entries = audit_->List(*request);
  if (!entries.ok()) return ToGrpcStatus(entries.status());
  for (const auto& entry : *entries) {
    // A long export stops as soon as its reader is revoked.
    if (absl::Status allowed = authenticator_->CheckNotRevoked(*caller); !allowed.ok()) {
      return ToGrpcStatus(allowed);
    }
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
