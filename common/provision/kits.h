// Provisioning a party: the certificate from the project CA, the "kit" (key,
// certificate, CA certificate and a ready config file) to hand to the
// party, and its record in the project directory (project_layout.h).
//
// AddParty takes the directory's ProvisionLock, so concurrent `fedmi
// provision` processes on one directory are serialised. Every file goes
// through the Env given (Env::Default() unless a test injects one) and is
// fsynced with its directory; private keys are created with mode 0600. A
// failure leaves the directory as it was: no kit folder appears unless the
// party is recorded, and the records are never half-updated.
#ifndef FEDMI_COMMON_PROVISION_KITS_H_
#define FEDMI_COMMON_PROVISION_KITS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/crypto/identity.h"
#include "common/provision/issued_index.h"
#include "common/provision/kit_templates.h"
#include "common/provision/project_ca.h"

namespace fedmi {

// What goes into a kit's config beyond the certificate.
struct KitSettings {
  // Coordinator kits only: the host name or IP address parties dial (added to
  // the certificate's SANs) and the port the coordinator listens on. Both are
  // recorded in <dir>/project.json and used in every later kit's config.
  // Ignored for other roles.
  std::string coordinator_host;
  int coordinator_port = kDefaultCoordinatorPort;
};

// Issues a certificate for a new party with the CA in `dir`, writes its kit to
// <dir>/kits/<name>/ and records it in <dir>/issued.json.
//
// Kit contents: key.pem (0600), cert.pem, ca.pem and a config file whose
// paths are relative to the kit folder:
//   coordinator: coordinator.toml (listen, db, cert, key, ca, audit-key,
//                audit-cert), state/, and the audit signer's audit-key.pem
//                (0600) and audit-cert.pem: a second key, issued as
//                "<name>-audit" with role audit-signer, that alone signs
//                the audit log (both are recorded in issued.json)
//   site:        client.toml (coordinator, site, cert, key, ca, policy) and
//                policy.toml (safe defaults, the coordinator's fingerprint)
//   admin, auditor: fedmi.toml (coordinator, cert, key, ca)
// Site, admin and auditor configs name the coordinator recorded by an
// earlier coordinator kit, or the placeholder "HOST:7000" if none exists yet.
//
// AlreadyExists if `name` was issued before ("site 'site-1' is already
// provisioned (serial ..., expires ...); re-key it with `fedmi provision
// renew`") or its kit folder exists; NotFound if `dir` holds no CA;
// InvalidArgument for a bad name, SAN, host or port; the Env's error (e.g.
// ResourceExhausted for a full disk) naming the kit or file otherwise.
// Never changes the CA or another party's kit. InvalidArgument for the
// audit-signer role (AddAuditSigner).
absl::StatusOr<IssuedParty> AddParty(const std::string& dir, const std::string& name,
                                     PartyRole role, const IssueOptions& options,
                                     const KitSettings& settings, Env& env = *Env::Default());

// Re-keys a provisioned party: a fresh key and certificate (same name, role
// and, for the coordinator, the same SANs; valid `days`) replace key.pem and
// cert.pem in its kit folder (an audit signer's: audit-key.pem and
// audit-cert.pem in its coordinator's kit), each file atomically; the config and every
// other kit stay as they are. issued.json records the new certificate and
// marks the one it replaces revoked ("renewed"), so the next ProjectCrl lists
// it. A renewed coordinator's new fingerprint goes into project.json (kits
// made from now on pin it; existing sites' policy.toml must be updated).
// NotFound for a name never issued or a kit folder without cert.pem;
// FailedPrecondition past the CA's life; the Env's error naming the file
// otherwise. After a failure issued.json, project.json and the kit are as
// they were.
absl::StatusOr<IssuedParty> RenewParty(const std::string& dir, const std::string& name, int days,
                                       Env& env = *Env::Default());

// Marks the current (newest) certificate of `name` revoked in issued.json,
// with the time and `reason`. Returns its record. NotFound for a name never
// issued; FailedPrecondition when that certificate is already revoked.
absl::StatusOr<IssuedRecord> RevokeIssued(const std::string& dir, const std::string& name,
                                          const std::string& reason, Env& env = *Env::Default());

// A PEM CRL signed by the project CA listing every serial issued.json marks
// revoked (ProjectCa::SignCrl; next update in `days`). NotFound without a CA.
absl::StatusOr<std::string> ProjectCrl(const std::string& dir, int days = 30,
                                       Env& env = *Env::Default());

// The audit signer of coordinator `coordinator`: "<coordinator>-audit".
inline std::string AuditSignerName(const std::string& coordinator) {
  return coordinator + "-audit";
}
inline constexpr char kAuditKeyFile[] = "audit-key.pem";
inline constexpr char kAuditCertFile[] = "audit-cert.pem";

// Issues an audit signer for a coordinator provisioned before coordinators
// got one: writes audit-key.pem (0600) and audit-cert.pem into its kit,
// adds audit-key and audit-cert to its coordinator.toml and records
// "<coordinator>-audit" in issued.json. NotFound if no such coordinator was
// issued; AlreadyExists if it has an audit signer already (renew re-keys it).
// A failure leaves the kit and issued.json as they were.
absl::StatusOr<IssuedParty> AddAuditSigner(const std::string& dir, const std::string& coordinator,
                                           const IssueOptions& options, Env& env = *Env::Default());

// The parties recorded in <dir>/issued.json, in order of issue; empty if none
// was added yet. NotFound if `dir` holds no CA.
absl::StatusOr<std::vector<IssuedRecord>> ListIssued(const std::string& dir,
                                                     Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_PROVISION_KITS_H_
