// Thin gRPC adapters over Federation: they translate protobuf and gRPC status
// to and from the core and hold no state of their own. Only the
// coordinator's main uses them.
#ifndef FEDMI_COORDINATOR_GRPC_SERVICES_H_
#define FEDMI_COORDINATOR_GRPC_SERVICES_H_

#include "coordinator/audit_log.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/federation.h"
#include "fedmi/v1/admin.grpc.pb.h"
#include "fedmi/v1/audit.grpc.pb.h"
#include "fedmi/v1/federation.grpc.pb.h"

namespace fedmi {

// Who is calling. With mutual TLS the peer certificate (already verified
// against the project CA by the handshake) names the party (CN) and its
// role (OU); request fields are never trusted for identity. A party revoked
// by name or by the CRL is refused (Federation::CheckNotRevoked). With
// --insecure there is no certificate: sites name themselves and every other
// caller is treated as the administrator.
//
// Refusals are recorded in the audit log through `federation` (may be null).
class Authenticator {
 public:
  explicit Authenticator(bool insecure, Federation* federation = nullptr)
      : insecure_(insecure), federation_(federation) {}
  // `claimed_site` is the site name a request carries, used only insecurely.
  absl::StatusOr<Caller> Identify(grpc::ServerContext* context, PartyRole insecure_role,
                                  const std::string& claimed_site = "") const;
  // The party's certificate and CN, checked against revocations and the CRL
  // (Federation::CheckNotRevoked); also asked again by long streams.
  // Without a federation: OK.
  absl::Status CheckNotRevoked(const Caller& caller) const;
  // Identify, then RequireRole; a refusal is recorded as auth.denied.
  absl::StatusOr<Caller> Authorize(grpc::ServerContext* context,
                                   std::initializer_list<PartyRole> allowed,
                                   const char* call) const;

 private:
  absl::StatusOr<Caller> IdentifyPeer(grpc::ServerContext* context, PartyRole insecure_role,
                                      const std::string& claimed_site) const;

  bool insecure_;
  Federation* federation_;
};

// PermissionDenied naming the caller, its role and what `call` needs.
absl::Status RequireRole(const Caller& caller, std::initializer_list<PartyRole> allowed,
                         const char* call);

class GrpcFederationService final : public v1::Federation::Service {
 public:
  GrpcFederationService(Federation* federation, const Authenticator* authenticator)
      : federation_(federation), authenticator_(authenticator) {}

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::SiteMessage>* stream) override;
  grpc::Status DownloadModel(grpc::ServerContext* context, const v1::ModelRef* request,
                             grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status UploadUpdate(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadMessage>* reader,
                            v1::UploadReceipt* receipt) override;

  // Counts the model bytes DownloadModel streams; null (the default): none.
  void set_transfer_metrics(const CoordinatorTransferMetrics* transfer) { transfer_ = transfer; }

 private:
  Federation* federation_;
  const Authenticator* authenticator_;
  const CoordinatorTransferMetrics* transfer_ = nullptr;
};

// The audit log, read-only, for auditors and admins.
class GrpcAuditService final : public v1::Audit::Service {
 public:
  GrpcAuditService(AuditLog* audit, const Authenticator* authenticator)
      : audit_(audit), authenticator_(authenticator) {}

  grpc::Status ListEntries(grpc::ServerContext* context, const v1::AuditQuery* request,
                           grpc::ServerWriter<v1::AuditEntry>* writer) override;
  grpc::Status GetInfo(grpc::ServerContext* context, const v1::AuditInfoRequest* request,
                       v1::AuditInfo* response) override;

 private:
  AuditLog* audit_;
  const Authenticator* authenticator_;
};

class GrpcAdminService final : public v1::Admin::Service {
 public:
  GrpcAdminService(Federation* federation, const Authenticator* authenticator)
      : federation_(federation), authenticator_(authenticator) {}

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
  grpc::Status RevokeSite(grpc::ServerContext* context, const v1::RevokeSiteRequest* request,
                          v1::RevokeSiteResponse* response) override;
  grpc::Status Revoke(grpc::ServerContext* context, const v1::RevokeRequest* request,
                      v1::RevokeResponse* response) override;
  grpc::Status ListRevocations(grpc::ServerContext* context,
                               const v1::ListRevocationsRequest* request,
                               v1::ListRevocationsResponse* response) override;
  grpc::Status ExportModel(grpc::ServerContext* context, const v1::ExportModelRequest* request,
                           grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status UploadArtifact(grpc::ServerContext* context,
                              grpc::ServerReader<v1::TensorChunk>* reader,
                              v1::ArtifactReceipt* receipt) override;

  // Counts the model bytes ExportModel streams; null (the default): none.
  void set_transfer_metrics(const CoordinatorTransferMetrics* transfer) { transfer_ = transfer; }

 private:
  // The caller, if it holds one of `allowed`.
  absl::StatusOr<Caller> Authorize(grpc::ServerContext* context,
                                   std::initializer_list<PartyRole> allowed, const char* call);

  Federation* federation_;
  const Authenticator* authenticator_;
  const CoordinatorTransferMetrics* transfer_ = nullptr;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_GRPC_SERVICES_H_
