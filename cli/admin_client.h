// Client side of the coordinator's Admin and Audit services (one channel),
// returning absl::Status values with the coordinator's message.
// Thread-compatible.
#ifndef FEDMI_CLI_ADMIN_CLIENT_H_
#define FEDMI_CLI_ADMIN_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/audit.h"
#include "common/rpc/channels.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/admin.grpc.pb.h"
#include "fedmi/v1/audit.grpc.pb.h"

namespace fedmi::cli {

class AdminClient {
 public:
  // Fails only on a malformed address; connection problems surface per call.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Connect(const std::string& target,
                                                              const TransportOptions& transport);

  absl::StatusOr<int64_t> StartRun(const v1::RunSpec& spec);
  absl::StatusOr<v1::RunStatus> GetRun(int64_t run_id);
  absl::StatusOr<std::vector<v1::RunStatus>> ListRuns();
  absl::Status AbortRun(int64_t run_id, const std::string& reason);
  absl::StatusOr<std::vector<v1::SiteInfo>> ListSites();
  // Revokes the site, admin or auditor `name` at once and for good (admin
  // only): the coordinator ends its open streams and refuses its certificate
  // from then on. `role` ("site", "admin", "auditor"; empty: a site the
  // coordinator knows). `reason` is stored with who revoked it and when.
  // FailedPrecondition if already revoked or `name` is the caller.
  absl::StatusOr<v1::Revocation> Revoke(const std::string& name, const std::string& role,
                                        const std::string& reason);
  // Every revocation, sites included (admins and auditors).
  absl::StatusOr<std::vector<v1::Revocation>> ListRevocations();
  // Calls `on_update` for every status change until the run ends, the
  // callback returns false, or the stream fails.
  absl::Status WatchRun(int64_t run_id, const std::function<bool(const v1::RunStatus&)>& on_update);
  // Downloads a global model; round < 0 means the latest. *round receives the
  // round actually exported.
  absl::StatusOr<TensorBundle> ExportModel(int64_t run_id, int32_t round, int32_t* exported_round);
  // Stores `bundle` on the coordinator for a run spec to name by the
  // receipt's SHA-256 (initial weights, a model file).
  absl::StatusOr<v1::ArtifactReceipt> UploadArtifact(const TensorBundle& bundle);

  // Calls `on_entry` for each audit log entry matching `query`, in seq order
  // (auditors and admins). A stream that breaks off part-way is an error, so
  // a caller never mistakes a prefix for the whole log.
  absl::Status ListAuditEntries(const v1::AuditQuery& query,
                                const std::function<void(const v1::AuditEntry&)>& on_entry);
  // The log's signed head, the coordinator's signing certificate and counts.
  absl::StatusOr<v1::AuditInfo> GetAuditInfo();
  // Every entry matching `query`, in seq order.
  absl::StatusOr<std::vector<v1::AuditEntry>> FetchAuditEntries(const v1::AuditQuery& query);
  // The whole log as of its signed head. The head is read first and entries
  // appended after it are left out: VerifyLog refuses entries the head does
  // not cover, and they would be unprotected against deletion anyway.
  absl::StatusOr<audit::ExportedLog> FetchAuditLog();

  // Polls ListSites until `count` sites are connected or `timeout` passes.
  absl::Status WaitForSites(int count, absl::Duration timeout);

 private:
  explicit AdminClient(std::shared_ptr<grpc::Channel> channel);
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> stub_;
  std::unique_ptr<v1::Audit::Stub> audit_stub_;
};

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_ADMIN_CLIENT_H_
