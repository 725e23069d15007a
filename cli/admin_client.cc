#include "cli/admin_client.h"

#include <chrono>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/rpc/bundle_stream.h"
#include "common/rpc/grpc_status.h"
#include "common/rpc/name_resolution.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi::cli {
namespace {

constexpr absl::Duration kUnaryDeadline = absl::Seconds(30);

// The header keeps only the channel, and grpc::Channel does not reveal its
// target, so Connect() records the address here for error messages.
class TargetRegistry {
 public:
  void Set(const grpc::Channel* channel, const std::string& target) {
    absl::MutexLock lock(&mu_);
    targets_[channel] = target;
  }
  std::string Get(const grpc::Channel* channel) {
    absl::MutexLock lock(&mu_);
    auto it = targets_.find(channel);
    return it == targets_.end() ? "the configured address" : it->second;
  }

 private:
  absl::Mutex mu_;
  std::map<const grpc::Channel*, std::string> targets_ ABSL_GUARDED_BY(mu_);
};

TargetRegistry& Targets() {
  static TargetRegistry* registry = new TargetRegistry();  // never destroyed
  return *registry;
}

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

// Converts a failed call, naming the coordinator when it could not be reached.
absl::Status CallStatus(const absl::Status& status, const grpc::Channel* channel) {
  if (status.code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(absl::StrCat("cannot reach coordinator at ",
                                               Targets().Get(channel), ": ",
                                               ExplainResolutionFailure(status.message())));
  }
  return status;
}

absl::Status CallStatus(const grpc::Status& status, const grpc::Channel* channel) {
  return CallStatus(FromGrpcStatus(status), channel);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Connect(
    const std::string& target, const TransportOptions& transport) {
  auto channel = MakeChannel(target, transport);
  if (!channel.ok()) return channel.status();
  Targets().Set(channel->get(), target);
  return std::unique_ptr<AdminClient>(new AdminClient(*std::move(channel)));
}

AdminClient::AdminClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(v1::Admin::NewStub(channel_)),
      audit_stub_(v1::Audit::NewStub(channel_)) {}

absl::StatusOr<int64_t> AdminClient::StartRun(const v1::RunSpec& spec) {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::StartRunRequest request;
  *request.mutable_spec() = spec;
  v1::StartRunResponse response;
  grpc::Status status = stub_->StartRun(&context, request, &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return response.run_id();
}

absl::StatusOr<v1::RunStatus> AdminClient::GetRun(int64_t run_id) {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::RunRef request;
  request.set_run_id(run_id);
  v1::RunStatus response;
  grpc::Status status = stub_->GetRun(&context, request, &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return response;
}

absl::StatusOr<std::vector<v1::RunStatus>> AdminClient::ListRuns() {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::ListRunsResponse response;
  grpc::Status status = stub_->ListRuns(&context, v1::ListRunsRequest(), &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return std::vector<v1::RunStatus>(response.runs().begin(), response.runs().end());
}

absl::Status AdminClient::AbortRun(int64_t run_id, const std::string& reason) {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::AbortRunRequest request;
  request.set_run_id(run_id);
  request.set_reason(reason);
  v1::AbortRunResponse response;
  grpc::Status status = stub_->AbortRun(&context, request, &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::SiteInfo>> AdminClient::ListSites() {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::ListSitesResponse response;
  grpc::Status status = stub_->ListSites(&context, v1::ListSitesRequest(), &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return std::vector<v1::SiteInfo>(response.sites().begin(), response.sites().end());
}

absl::StatusOr<v1::Revocation> AdminClient::Revoke(const std::string& name, const std::string& role,
                                                   const std::string& reason) {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::RevokeRequest request;
  request.set_name(name);
  request.set_role(role);
  request.set_reason(reason);
  v1::RevokeResponse response;
  grpc::Status status = stub_->Revoke(&context, request, &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return response.revocation();
}

absl::StatusOr<std::vector<v1::Revocation>> AdminClient::ListRevocations() {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::ListRevocationsResponse response;
  grpc::Status status = stub_->ListRevocations(&context, v1::ListRevocationsRequest(), &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return std::vector<v1::Revocation>(response.revocations().begin(), response.revocations().end());
}

absl::Status AdminClient::WatchRun(int64_t run_id,
                                   const std::function<bool(const v1::RunStatus&)>& on_update) {
  // No deadline: a run may take hours. A dead coordinator still ends the
  // stream through the channel's keepalive.
  grpc::ClientContext context;
  v1::RunRef request;
  request.set_run_id(run_id);
  std::unique_ptr<grpc::ClientReader<v1::RunStatus>> reader = stub_->WatchRun(&context, request);
  v1::RunStatus update;
  bool stopped = false;
  while (reader->Read(&update)) {
    if (!on_update(update)) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (stopped) return absl::OkStatus();
  if (!status.ok()) return CallStatus(status, channel_.get());
  return absl::OkStatus();
}

absl::StatusOr<TensorBundle> AdminClient::ExportModel(int64_t run_id, int32_t round,
                                                      int32_t* exported_round) {
  grpc::ClientContext context;
  v1::ExportModelRequest request;
  request.set_run_id(run_id);
  if (round < 0) {
    request.set_latest(true);
  } else {
    request.set_round(round);
  }
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
      stub_->ExportModel(&context, request);

  absl::StatusOr<TensorBundle> bundle = ReceiveBundle(&context, reader.get(), "model");
  // Decode errors are never Unavailable, so only a failed call is reworded.
  if (!bundle.ok()) return CallStatus(bundle.status(), channel_.get());

  if (exported_round != nullptr) {
    *exported_round = round;
    const auto& metadata = context.GetServerInitialMetadata();
    auto it = metadata.find("fedmi-round");
    int32_t parsed = 0;
    if (it != metadata.end() &&
        absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &parsed)) {
      *exported_round = parsed;
    } else if (round < 0) {
      return absl::InternalError(
          "coordinator did not say which round it exported (no 'fedmi-round' metadata)");
    }
  }
  return bundle;
}

absl::StatusOr<v1::ArtifactReceipt> AdminClient::UploadArtifact(const TensorBundle& bundle) {
  grpc::ClientContext context;
  v1::ArtifactReceipt receipt;
  std::unique_ptr<grpc::ClientWriter<v1::TensorChunk>> writer =
      stub_->UploadArtifact(&context, &receipt);
  // A refused header ends the call early; Finish says why.
  (void)StreamBundle(bundle, [&](const v1::TensorChunk& chunk) { return writer->Write(chunk); });
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return CallStatus(status, channel_.get());
  return receipt;
}

absl::Status AdminClient::ListAuditEntries(
    const v1::AuditQuery& query, const std::function<void(const v1::AuditEntry&)>& on_entry) {
  // No deadline: a long log streams for a while, like a model export.
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::AuditEntry>> reader =
      audit_stub_->ListEntries(&context, query);
  v1::AuditEntry entry;
  while (reader->Read(&entry)) on_entry(entry);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return CallStatus(status, channel_.get());
  return absl::OkStatus();
}

absl::StatusOr<v1::AuditInfo> AdminClient::GetAuditInfo() {
  grpc::ClientContext context;
  SetDeadline(&context, kUnaryDeadline);
  v1::AuditInfo response;
  grpc::Status status = audit_stub_->GetInfo(&context, v1::AuditInfoRequest(), &response);
  if (!status.ok()) return CallStatus(status, channel_.get());
  return response;
}

absl::Status AdminClient::WaitForSites(int count, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last_error;
  int connected = 0;
  while (true) {
    auto sites = ListSites();
    if (sites.ok()) {
      connected = 0;
      for (const auto& site : *sites) connected += site.connected() ? 1 : 0;
      if (connected >= count) return absl::OkStatus();
      last_error = absl::OkStatus();
    } else if (sites.status().code() == absl::StatusCode::kUnavailable) {
      // The coordinator may still be starting up.
      last_error = sites.status();
    } else {
      return sites.status();
    }
    if (absl::Now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!last_error.ok()) return last_error;
  return absl::DeadlineExceededError(absl::StrCat(
      "only ", connected, " of ", count, " sites connected after ", absl::FormatDuration(timeout)));
}

absl::StatusOr<std::vector<v1::AuditEntry>> AdminClient::FetchAuditEntries(
    const v1::AuditQuery& query) {
  std::vector<v1::AuditEntry> entries;
  absl::Status status =
      ListAuditEntries(query, [&](const v1::AuditEntry& entry) { entries.push_back(entry); });
  if (!status.ok()) return status;
  return entries;
}

absl::StatusOr<audit::ExportedLog> AdminClient::FetchAuditLog() {
  auto info = GetAuditInfo();
  if (!info.ok()) return info.status();
  auto entries = FetchAuditEntries(v1::AuditQuery());
  if (!entries.ok()) return entries.status();
  audit::ExportedLog log;
  log.signer_certificate_pem = info->signer_certificate_pem();
  log.head = info->head();
  for (auto& entry : *entries) {
    if (entry.seq() > log.head.seq()) break;
    log.entries.push_back(std::move(entry));
  }
  return log;
}

}  // namespace fedmi::cli
