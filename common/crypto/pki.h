// Certificates for mutual TLS: a project certificate authority kept in a
// directory, the parties it issues certificates to, and the "kits" (key,
// certificate, CA certificate and a ready config file) handed to each party.
//
// Every party gets an ECDSA P-256 key and a certificate whose subject names
// the project (O), the party's role (OU) and its name (CN); the coordinator's
// certificate is for TLS servers (EKU serverAuth), everyone else's for TLS
// clients (EKU clientAuth).
//
// Layout of a project directory:
//   ca/ca.key            the CA's private key (0600); never leaves this machine
//   ca/ca.crt            the CA certificate every party trusts
//   issued.json          every issued party, in order of issue
//   project.json         where parties reach the coordinator, once one is added
//   kits/<name>/         what to copy to the party's machine
//
// Free functions and ProjectCa are thread-compatible. Functions that change a
// project directory (ProjectCa::Create, AddParty) take a lock file in it, so
// concurrent `fedmi provision` processes on one directory are serialised.
// Files are written under a temporary name and renamed into place; private
// keys are created with mode 0600. Failures leave what existed unchanged.
// Uses OpenSSL's libcrypto; no OpenSSL type appears in this header.
#ifndef FEDMI_COMMON_CRYPTO_PKI_H_
#define FEDMI_COMMON_CRYPTO_PKI_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fedmi {

enum class PartyRole { kCoordinator, kSite, kAdmin, kAuditor };

// "coordinator", "site", "admin", "auditor".
const char* PartyRoleName(PartyRole role);
// The inverse of PartyRoleName; InvalidArgument for anything else.
absl::StatusOr<PartyRole> ParsePartyRole(const std::string& name);

// Party and project names: 1-64 characters of [A-Za-z0-9._-]. InvalidArgument
// naming `what` ("site name") otherwise.
absl::Status ValidatePartyName(const std::string& name, absl::string_view what = "name");

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
};

// Reads the first certificate in `pem`. InvalidArgument if there is none.
absl::StatusOr<CertificateInfo> ParseCertificatePem(const std::string& pem);

// The whole file. NotFound naming the path if it does not exist,
// PermissionDenied if it cannot be opened for reading, Internal otherwise.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// "2026-01-01T00:00:00Z".
std::string FormatCertificateTime(absl::Time time);

// OK if `cert_pem` was signed by the CA in `ca_pem` and both are valid at
// `now`. PermissionDenied naming the reason otherwise ("certificate 'site-1'
// expired at 2026-01-01T00:00:00Z", "certificate 'x' was not issued by
// project CA 'P'"); InvalidArgument if either PEM does not hold a certificate.
absl::Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_pem, absl::Time now);

// An ECDSA (P-256, SHA-256) signature over `data`, DER-encoded, made with the
// private key in `key_pem`. InvalidArgument if `key_pem` holds no EC key.
absl::StatusOr<std::string> SignWithKeyPem(const std::string& key_pem, absl::string_view data);

// A private key parsed once, for signing many messages as SignWithKeyPem
// does (OpenSSL 3 decodes a PEM key in hundreds of microseconds; signing
// with a parsed P-256 key takes tens). Thread-safe: Sign may run
// concurrently.
class SigningKey {
 public:
  // InvalidArgument for a key that does not parse.
  static absl::StatusOr<std::unique_ptr<SigningKey>> FromPem(const std::string& key_pem);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  absl::StatusOr<std::string> Sign(absl::string_view data) const;

 private:
  explicit SigningKey(void* key) : key_(key) {}
  void* key_;  // EVP_PKEY*, kept opaque so this header needs no OpenSSL
};
// OK if `signature` is the signature of `data` by the key of the certificate
// in `cert_pem`. PermissionDenied ("signature does not match certificate
// 'site-1'") for a wrong or malformed signature, InvalidArgument for a bad
// certificate. Checks the signature only, not who issued the certificate or
// when it expires: pair it with VerifyIssuedBy.
absl::Status VerifyWithCertificatePem(const std::string& cert_pem, absl::string_view data,
                                      absl::string_view signature);

struct IssueOptions {
  int days = 365;
  // Shifts the validity window; tests use negative values to make
  // certificates that have already expired.
  absl::Duration start_offset = absl::ZeroDuration();
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

struct IssuedParty {
  std::string name;
  PartyRole role;
  std::string key_pem;  // PKCS#8, unencrypted
  std::string cert_pem;
  CertificateInfo info;
};

// A project certificate authority kept in a directory (ca/ca.key, ca/ca.crt).
// Immutable after Create/Open; Issue may be called from several threads.
class ProjectCa {
 public:
  // Creates <dir>/ca/ca.key (mode 0600) and <dir>/ca/ca.crt: a self-signed
  // ECDSA P-256 CA (basicConstraints CA:TRUE critical, keyUsage keyCertSign and
  // cRLSign, CN "<project> fedmi CA", O project), valid for `days`.
  // AlreadyExists if the directory already holds a CA; InvalidArgument for a
  // bad project name or `days` < 1.
  static absl::StatusOr<std::unique_ptr<ProjectCa>> Create(const std::string& dir,
                                                           const std::string& project,
                                                           int days = 3650);
  // Loads the CA in `dir`. NotFound if there is none; InvalidArgument if its
  // key does not belong to its certificate.
  static absl::StatusOr<std::unique_ptr<ProjectCa>> Open(const std::string& dir);

  const std::string& project() const { return project_; }
  const std::string& ca_cert_pem() const { return cert_pem_; }
  const CertificateInfo& ca_info() const { return info_; }

  // Issues a fresh ECDSA P-256 key and certificate: subject CN=name, OU=role,
  // O=project, a random 128-bit serial. The coordinator's certificate has EKU
  // serverAuth and the SANs in `options` plus DNS:localhost and IP:127.0.0.1;
  // the others have EKU clientAuth and only the SANs in `options` (a party is
  // known by its CN, not by a host name). Validity starts at now +
  // start_offset (less five minutes for clock skew) and lasts `days`.
  // InvalidArgument for a bad name, SAN or `days`; FailedPrecondition if the
  // certificate would outlive the CA. Writes no file and records nothing.
  absl::StatusOr<IssuedParty> Issue(const std::string& name, PartyRole role,
                                    const IssueOptions& options) const;

 private:
  ProjectCa(std::string project, std::string key_pem, std::string cert_pem, CertificateInfo info)
      : project_(std::move(project)),
        key_pem_(std::move(key_pem)),
        cert_pem_(std::move(cert_pem)),
        info_(std::move(info)) {}

  std::string project_;
  std::string key_pem_;
  std::string cert_pem_;
  CertificateInfo info_;
};

inline constexpr int kDefaultCoordinatorPort = 7000;

// What goes into a kit's config beyond the certificate.
struct KitSettings {
  // Coordinator kits only: the host name or IP address parties dial (added to
  // the certificate's SANs) and the port the coordinator listens on. Both are
  // recorded in <dir>/project.json and used in every later kit's config.
  // Ignored for other roles.
  std::string coordinator_host;
  int coordinator_port = kDefaultCoordinatorPort;
};

// One line of <dir>/issued.json.
struct IssuedRecord {
  std::string name;
  PartyRole role;
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
  std::string sha256_fingerprint;
  std::string kit;  // the kit folder, relative to the project directory: "kits/<name>"
};

// Issues a certificate for a new party with the CA in `dir`, writes its kit to
// <dir>/kits/<name>/ and records it in <dir>/issued.json.
//
// Kit contents: key.pem (0600), cert.pem, ca.pem and a config file whose
// paths are relative to the kit folder:
//   coordinator: coordinator.toml (listen, db, cert, key, ca)
//   site:        client.toml (coordinator, site, cert, key, ca, policy) and
//                policy.toml (safe defaults, the coordinator's fingerprint)
//   admin, auditor: fedmi.toml (coordinator, cert, key, ca)
// Site, admin and auditor configs name the coordinator recorded by an
// earlier coordinator kit, or the placeholder "HOST:7000" if none exists yet.
//
// AlreadyExists if `name` was issued before ("site 'site-1' is already
// provisioned (serial ..., expires ...); existing parties are never
// re-keyed") or its kit folder exists; NotFound if `dir` holds no CA;
// InvalidArgument for a bad name, SAN, host or port. Never changes the CA or
// another party's kit.
absl::StatusOr<IssuedParty> AddParty(const std::string& dir, const std::string& name,
                                     PartyRole role, const IssueOptions& options,
                                     const KitSettings& settings);

// The parties recorded in <dir>/issued.json, in order of issue; empty if none
// was added yet. NotFound if `dir` holds no CA.
absl::StatusOr<std::vector<IssuedRecord>> ListIssued(const std::string& dir);

}  // namespace fedmi

#endif  // FEDMI_COMMON_CRYPTO_PKI_H_
