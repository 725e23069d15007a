#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/identity.h"
#include "coordinator/grpc_services.h"

namespace fedmi {

absl::StatusOr<Caller> Authenticator::Authorize(grpc::ServerContext* context,
                                                std::initializer_list<PartyRole> allowed,
                                                const char* call) const {
  ASSIGN_OR_RETURN(Caller caller, Identify(context, PartyRole::kAdmin));
  absl::Status status = RequireRole(caller, allowed, call);
  if (!status.ok()) {
    if (federation_ != nullptr) {
      federation_->RecordDenied(caller.name, call, std::string(status.message()));
    }
    return status;
  }
  return caller;
}

absl::StatusOr<Caller> Authenticator::Identify(grpc::ServerContext* context,
                                               PartyRole insecure_role,
                                               const std::string& claimed_site) const {
  absl::StatusOr<Caller> caller = IdentifyPeer(context, insecure_role, claimed_site);
  if (!caller.ok() && federation_ != nullptr) {
    // No trustworthy name: the peer address stands in for the actor.
    federation_->RecordDenied(absl::StrCat("peer ", context->peer()), "identify",
                              std::string(caller.status().message()));
  }
  if (!caller.ok()) return caller;
  if (absl::Status allowed = CheckNotRevoked(*caller); !allowed.ok()) {
    federation_->RecordDenied(caller->name, "identify", std::string(allowed.message()));
    return allowed;
  }
  return caller;
}

absl::Status Authenticator::CheckNotRevoked(const Caller& caller) const {
  return federation_ == nullptr ? absl::OkStatus() : federation_->CheckNotRevoked(caller);
}

absl::StatusOr<Caller> Authenticator::IdentifyPeer(grpc::ServerContext* context,
                                                   PartyRole insecure_role,
                                                   const std::string& claimed_site) const {
  if (insecure_) {
    Caller caller;
    caller.name = insecure_role == PartyRole::kSite ? claimed_site : "admin";
    caller.role = insecure_role;
    return caller;
  }
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  std::vector<grpc::string_ref> pem =
      auth ? auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)
           : std::vector<grpc::string_ref>{};
  if (pem.empty()) {
    return absl::UnauthenticatedError("no client certificate: connect with a fedmi kit");
  }
  std::string certificate_pem(pem[0].data(), pem[0].size());
  auto info = ParseCertificatePem(certificate_pem);
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("unreadable client certificate: ", info.status().message()));
  }
  auto role = ParsePartyRole(info->role_name);
  Caller caller;
  caller.name = info->common_name;
  caller.certificate_expires = absl::ToDoubleSeconds(info->not_after - absl::UnixEpoch());
  caller.certificate_pem = std::move(certificate_pem);
  caller.certificate_serial = info->serial_hex;
  if (!role.ok()) {
    return absl::PermissionDeniedError(absl::StrCat("certificate '", info->common_name,
                                                    "' carries no fedmi role (OU '",
                                                    info->role_name, "')"));
  }
  if (*role == PartyRole::kCoordinator) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate '", info->common_name,
                     "' is a coordinator's; it cannot call the coordinator"));
  }
  if (*role == PartyRole::kAuditSigner) {
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate '", info->common_name, "' signs the audit log; it is no identity for a call"));
  }
  caller.role = *role;
  return caller;
}

absl::Status RequireRole(const Caller& caller, std::initializer_list<PartyRole> allowed,
                         const char* call) {
  for (PartyRole role : allowed) {
    if (caller.role == role) return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (PartyRole role : allowed) names.push_back(PartyRoleName(role));
  FEDMI_LOG(WARNING) << "denied " << call << " to '" << caller.name << "' ("
                     << PartyRoleName(caller.role) << ")";
  return absl::PermissionDeniedError(absl::StrCat("'", caller.name, "' holds the ",
                                                  PartyRoleName(caller.role), " role; ", call,
                                                  " needs ", absl::StrJoin(names, " or ")));
}

}  // namespace fedmi
