// Who a party is: the roles of a fedmi project, the one validator for party
// and project names, and what a party's X.509 certificate says and whether
// the project CA issued it.
//
// Every party's certificate names the project (O), the party's role (OU) and
// its name (CN). Free functions, thread-safe. Uses OpenSSL's libcrypto; no
// OpenSSL type appears in this header. Certificates are issued by
// common/provision/project_ca.h.
#ifndef FEDMI_COMMON_CRYPTO_IDENTITY_H_
#define FEDMI_COMMON_CRYPTO_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fedmi {

class RevocationList;

// kAuditSigner is not a party of the protocol but the coordinator's audit-log
// signing key, certified apart from its TLS key so that holding the TLS key
// is not enough to rewrite the log (docs/audit.md). It can never speak TLS.
enum class PartyRole { kCoordinator, kSite, kAdmin, kAuditor, kAuditSigner };

// "coordinator", "site", "admin", "auditor", "audit-signer".
const char* PartyRoleName(PartyRole role);
// The inverse of PartyRoleName; InvalidArgument for anything else.
absl::StatusOr<PartyRole> ParsePartyRole(const std::string& name);

// Party and project names: 1-64 characters of [A-Za-z0-9._-]. InvalidArgument
// naming `what` ("site name") otherwise.
absl::Status ValidatePartyName(const std::string& name, absl::string_view what = "name");

// The extended key usage of an audit-signer certificate: a private OID under
// the UUID arc (2.25, ITU-T X.667, needs no registration), "fedmi audit-log
// signing". Its certificate carries this one purpose and no TLS purpose, so
// no TLS stack accepts it as a client or a server.
inline constexpr char kAuditSigningOid[] = "2.25.295632477744811219443923297281185324444";

// What a certificate says, as the rest of fedmi needs it.
struct CertificateInfo {
  std::string common_name;  // the party's name (CN)
  std::string role_name;    // from the subject's OU
  std::string project;      // from the subject's O
  std::string issuer_common_name;
  std::string serial_hex;  // lower-case, no leading zeros
  absl::Time not_before;
  absl::Time not_after;
  std::string sha256_fingerprint;  // lower-case hex of SHA-256 over the DER certificate
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // textual: "127.0.0.1", "::1"
  // Extended key usage: TLS client (sites, admins, auditors) and TLS server
  // (the coordinator). Both false when the extension is absent.
  bool client_auth = false;
  bool server_auth = false;
  // The subject key's algorithm as OpenSSL names it: "EC" for fedmi's
  // ECDSA P-256 keys, "RSA", "ED25519", ... TLS 1.2 stays closed only for
  // EC keys (common/rpc/channels.h).
  std::string key_type;
  // EKU kAuditSigningOid: the certificate of an audit log's signing key.
  bool audit_signing = false;
};

// Reads the first certificate in `pem`. InvalidArgument if there is none.
absl::StatusOr<CertificateInfo> ParseCertificatePem(const std::string& pem);

// "2026-01-01T00:00:00Z".
std::string FormatCertificateTime(absl::Time time);

// OK if `cert_pem` was signed by the CA in `ca_pem` and both are valid at
// `now`. PermissionDenied naming the reason otherwise ("certificate 'site-1'
// expired at 2026-01-01T00:00:00Z", "certificate 'x' was not issued by
// project CA 'P'"); InvalidArgument if either PEM does not hold a certificate.
absl::Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_pem, absl::Time now);

// OK if `cert_pem` is one the project issued to `name` in `role`: issued by
// the CA in `ca_pem` and valid at `now` (VerifyIssuedBy), CN `name` (any name
// when empty), OU `role`, and the extended key usage of that role's side of
// TLS (serverAuth for the coordinator, clientAuth for everyone else).
// PermissionDenied naming the certificate and what it lacks otherwise, e.g.
// "certificate 'coordinator' holds the coordinator role, not site". Without
// the role and usage checks any party's certificate would pass as a site's.
// With `revoked` (may be null), a certificate whose serial it lists is
// refused too (RevocationList::CheckCertificate).
// An audit signer must hold the audit-signing usage and no TLS usage at all.
absl::Status VerifyPartyCertificate(const std::string& cert_pem, const std::string& ca_pem,
                                    const std::string& name, PartyRole role, absl::Time now,
                                    const RevocationList* revoked = nullptr);

}  // namespace fedmi

#endif  // FEDMI_COMMON_CRYPTO_IDENTITY_H_
