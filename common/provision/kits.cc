#include "common/provision/kits.h"

#include <openssl/rand.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status.h"
#include "common/crypto/openssl_util.h"
#include "common/crypto/sha256.h"
#include "common/provision/certificate_builder.h"
#include "common/provision/project_layout.h"
#include "common/provision/provision_lock.h"

namespace fedmi {
namespace {

struct KitFile {
  std::string name;
  std::string contents;
  uint32_t mode;
};

std::string RandomSuffix() {
  unsigned char bytes[6];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) openssl::TakeErrors();
  return HexEncode(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

absl::Status OkIfExists(absl::Status status) {
  return absl::IsAlreadyExists(status) ? absl::OkStatus() : status;
}

absl::Status OkIfNotFound(absl::Status status) {
  return absl::IsNotFound(status) ? absl::OkStatus() : status;
}

// A fresh, empty, private folder next to where the kit will be published.
absl::StatusOr<std::string> ClaimTemporaryFolder(Env& env, const std::string& kits,
                                                 const std::string& name) {
  absl::Status status;
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string temp = absl::StrCat(kits, "/.", name, ".tmp-", RandomSuffix());
    status = env.CreateDir(temp, 0700);
    if (status.ok()) return temp;
    if (!absl::IsAlreadyExists(status)) break;
  }
  return status;
}

absl::Status FillKitFolder(Env& env, const std::string& folder, const std::vector<KitFile>& files,
                           bool with_state_folder) {
  for (const KitFile& file : files) {
    RETURN_IF_ERROR(WriteFileAtomically(env, folder + "/" + file.name, file.contents, file.mode,
                                        Publish::kExclusive));
  }
  if (with_state_folder) RETURN_IF_ERROR(env.CreateDir(folder + "/state", 0700));
  return absl::OkStatus();
}

// Writes the kit into a hidden temporary folder next to its final place and
// renames it there, so a kit folder is either complete or absent.
absl::Status WriteKit(Env& env, const std::string& dir, const std::string& name,
                      const std::vector<KitFile>& files, bool with_state_folder) {
  const std::string kits = project_layout::KitsDir(dir);
  const std::string final_path = kits + "/" + name;
  RETURN_IF_ERROR(OkIfExists(env.CreateDir(kits, 0700)));
  ASSIGN_OR_RETURN(std::string temp, ClaimTemporaryFolder(env, kits, name));
  absl::Status status = FillKitFolder(env, temp, files, with_state_folder);
  if (status.ok()) {
    status = env.RenameFile(temp, final_path);
    if (!status.ok() && !env.FileExists(temp)) {
      // Renamed, but the directory could not be synced: an unrecorded kit
      // must not stay.
      env.RemoveTree(final_path).IgnoreError();
    } else if (!status.ok() && env.FileExists(final_path)) {
      status = absl::AlreadyExistsError(absl::StrCat("kit folder '", final_path, "' exists"));
    }
  }
  if (status.ok()) return status;
  env.RemoveTree(temp).IgnoreError();
  return absl::Status(status.code(),
                      absl::StrCat("cannot write kit '", final_path, "': ", status.message()));
}

// How long an audit signer is valid, and from when: as asked for its
// coordinator, without the coordinator's host names (it is no TLS server).
IssueOptions AuditSignerOptions(const IssueOptions& options) {
  IssueOptions signer_options;
  signer_options.days = options.days;
  signer_options.start_offset = options.start_offset;
  return signer_options;
}

// The audit signer's key and certificate, which go into its coordinator's kit.
std::vector<KitFile> AuditSignerFiles(const IssuedParty& signer) {
  return {{kAuditKeyFile, signer.key_pem, 0600}, {kAuditCertFile, signer.cert_pem, 0644}};
}

std::vector<KitFile> KitFiles(const ProjectCa& ca, const IssuedParty& party,
                              const KitSettings& settings,
                              const std::optional<CoordinatorRecord>& coordinator,
                              const IssuedParty* audit_signer) {
  std::vector<KitFile> files = {{"key.pem", party.key_pem, 0600},
                                {"cert.pem", party.cert_pem, 0644},
                                {"ca.pem", ca.ca_cert_pem(), 0644}};
  const std::string& project = ca.project();
  switch (party.role) {
    case PartyRole::kCoordinator:
      files.push_back({"coordinator.toml",
                       CoordinatorConfig(project, party.name, settings.coordinator_port), 0644});
      break;
    case PartyRole::kSite:
      files.push_back({"client.toml", SiteConfig(project, party.name, coordinator), 0644});
      files.push_back({"policy.toml", SitePolicyConfig(coordinator), 0644});
      break;
    case PartyRole::kAdmin:
    case PartyRole::kAuditor:
      files.push_back(
          {"fedmi.toml", OperatorConfig(project, party.name, party.role, coordinator), 0644});
      break;
    case PartyRole::kAuditSigner:  // refused by AddParty: it has no kit of its own
      break;
  }
  if (audit_signer != nullptr) {
    for (KitFile& file : AuditSignerFiles(*audit_signer)) files.push_back(std::move(file));
  }
  return files;
}

// Adds the coordinator's host name or address to the SANs it is dialled by.
absl::Status AddCoordinatorAddress(const KitSettings& settings, IssueOptions& options) {
  if (settings.coordinator_host.empty()) {
    return absl::InvalidArgumentError("a coordinator needs the host name parties dial");
  }
  if (settings.coordinator_port < 1 || settings.coordinator_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port must be 1 to 65535, got ", settings.coordinator_port));
  }
  if (IsIpAddress(settings.coordinator_host)) {
    options.ip_addresses.insert(options.ip_addresses.begin(), settings.coordinator_host);
  } else {
    RETURN_IF_ERROR(ValidateDnsName(settings.coordinator_host));
    options.dns_names.insert(options.dns_names.begin(), settings.coordinator_host);
  }
  return absl::OkStatus();
}

// AlreadyExists if `name` (or, for a coordinator, any coordinator) was
// issued before or its kit folder is in the way.
absl::Status CheckNotProvisioned(Env& env, const std::string& dir, const ProjectCa& ca,
                                 const std::string& name, PartyRole role,
                                 const std::vector<IssuedRecord>& records) {
  for (const IssuedRecord& record : records) {
    if (record.name == name) {
      return absl::AlreadyExistsError(
          absl::StrCat(PartyRoleName(record.role), " '", name, "' is already provisioned (serial ",
                       record.serial_hex, ", expires ", FormatCertificateTime(record.not_after),
                       "); re-key it with `fedmi provision renew ", name, "`"));
    }
    if (role == PartyRole::kCoordinator && record.role == PartyRole::kCoordinator) {
      return absl::AlreadyExistsError(absl::StrCat(
          "project '", ca.project(), "' already has coordinator '", record.name, "' (serial ",
          record.serial_hex, "); re-key it with `fedmi provision renew`"));
    }
  }
  const std::string kit = project_layout::KitRelativePath(name);
  if (env.FileExists(dir + "/" + kit)) {
    return absl::AlreadyExistsError(
        absl::StrCat("kit folder '", dir, "/", kit,
                     "' exists but is not in issued.json; move it away to provision '", name, "'"));
  }
  return absl::OkStatus();
}

// `kit`: the folder that holds the party's key, relative to the project.
IssuedRecord RecordOf(const IssuedParty& party, const std::string& kit) {
  IssuedRecord record;
  record.name = party.name;
  record.role = party.role;
  record.serial_hex = party.info.serial_hex;
  record.not_before = party.info.not_before;
  record.not_after = party.info.not_after;
  record.sha256_fingerprint = party.info.sha256_fingerprint;
  record.kit = kit;
  return record;
}

// A file's contents before a change, to put back if the change fails.
struct SavedFile {
  std::string path;
  std::optional<std::string> contents;  // nullopt: the file did not exist
};

absl::StatusOr<SavedFile> SaveFile(Env& env, const std::string& path) {
  SavedFile saved{path, std::nullopt};
  if (env.FileExists(path)) {
    ASSIGN_OR_RETURN(saved.contents, env.ReadFile(path));
  }
  return saved;
}

// Puts the file back as it was (absent, or byte for byte).
absl::Status Restore(Env& env, const SavedFile& saved) {
  if (!saved.contents.has_value()) return OkIfNotFound(env.RemoveFile(saved.path));
  return WriteFileAtomically(env, saved.path, *saved.contents, 0644);
}

// `status` with the failure to undo it appended, if undoing failed.
absl::Status WithRestore(absl::Status status, Env& env, const SavedFile& saved) {
  const absl::Status restored = Restore(env, saved);
  if (restored.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), "; and restoring ", saved.path,
                                                  ": ", restored.message()));
}

// The index of the newest record of `name`; NotFound naming the project.
absl::StatusOr<size_t> CurrentRecord(const std::vector<IssuedRecord>& records,
                                     const std::string& dir, const std::string& name) {
  for (size_t i = records.size(); i-- > 0;) {
    if (records[i].name == name) return i;
  }
  return absl::NotFoundError(
      absl::StrCat("'", name, "' was never provisioned in '", dir, "' (see fedmi provision show)"));
}

// Writes issued.json as `records` (which hold the new party's records) and,
// for a coordinator, its address in project.json. If the second write fails
// the first is undone, so the two files never disagree.
absl::Status RecordParty(Env& env, const std::string& dir, const ProjectCa& ca,
                         const std::vector<IssuedRecord>& records, const IssuedParty& party,
                         const KitSettings& settings) {
  ASSIGN_OR_RETURN(SavedFile previous_index, SaveFile(env, project_layout::IndexPath(dir)));
  RETURN_IF_ERROR(WriteIssuedIndex(env, dir, records));
  if (party.role != PartyRole::kCoordinator) return absl::OkStatus();

  CoordinatorRecord address;
  address.name = party.name;
  address.host = settings.coordinator_host;
  address.port = settings.coordinator_port;
  address.address = HostPort(settings.coordinator_host, settings.coordinator_port);
  address.fingerprint = party.info.sha256_fingerprint;
  absl::Status status = WriteCoordinatorRecord(env, dir, ca.project(), address);
  if (!status.ok()) return WithRestore(status, env, previous_index);
  return status;
}

// Replaces the identity files of the kit in `kit_dir`, each atomically; if
// the certificate cannot be written, the old key goes back so that the kit
// never pairs a key with another key's certificate.
// An audit signer's files sit in its coordinator's kit beside the TLS ones.
absl::Status ReplaceIdentity(Env& env, const std::string& kit_dir, const IssuedParty& party) {
  const bool audit_signer = party.role == PartyRole::kAuditSigner;
  ASSIGN_OR_RETURN(
      SavedFile old_key,
      SaveFile(env, absl::StrCat(kit_dir, "/", audit_signer ? kAuditKeyFile : "key.pem")));
  RETURN_IF_ERROR(WriteFileAtomically(env, old_key.path, party.key_pem, 0600));
  absl::Status cert = WriteFileAtomically(
      env, absl::StrCat(kit_dir, "/", audit_signer ? kAuditCertFile : "cert.pem"), party.cert_pem,
      0644);
  if (cert.ok()) return cert;
  if (old_key.contents.has_value()) {
    WriteFileAtomically(env, old_key.path, *old_key.contents, 0600).IgnoreError();
  }
  return cert;
}

// Records a renewal: the old certificate revoked, the new one appended, and
// a coordinator's new fingerprint in project.json.
absl::Status RecordRenewal(Env& env, const std::string& dir, const ProjectCa& ca,
                           std::vector<IssuedRecord> records, size_t current,
                           const IssuedParty& party) {
  IssuedRecord& old = records[current];
  if (!old.revoked()) {
    old.revoked_at = absl::Now();
    old.revocation_reason = absl::StrCat("renewed: replaced by serial ", party.info.serial_hex);
  }
  records.push_back(RecordOf(party, old.kit));
  RETURN_IF_ERROR(WriteIssuedIndex(env, dir, records));
  if (party.role != PartyRole::kCoordinator) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<CoordinatorRecord> address, ReadCoordinatorRecord(env, dir));
  if (!address.has_value()) return absl::OkStatus();
  address->fingerprint = party.info.sha256_fingerprint;
  return WriteCoordinatorRecord(env, dir, ca.project(), *address);
}

}  // namespace

absl::StatusOr<IssuedParty> AddParty(const std::string& dir, const std::string& name,
                                     PartyRole role, const IssueOptions& options,
                                     const KitSettings& settings, Env& env) {
  RETURN_IF_ERROR(ValidatePartyName(name, absl::StrCat(PartyRoleName(role), " name")));
  if (role == PartyRole::kAuditSigner) {
    return absl::InvalidArgumentError(
        "an audit signer belongs to a coordinator's kit: use add-coordinator or "
        "add-audit-signer");
  }
  const bool is_coordinator = role == PartyRole::kCoordinator;
  IssueOptions issue_options = options;
  if (is_coordinator) RETURN_IF_ERROR(AddCoordinatorAddress(settings, issue_options));

  ASSIGN_OR_RETURN(std::unique_ptr<ProjectCa> ca, ProjectCa::Open(dir, env));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  ASSIGN_OR_RETURN(std::vector<IssuedRecord> records, ReadIssuedIndex(env, dir));
  RETURN_IF_ERROR(CheckNotProvisioned(env, dir, *ca, name, role, records));
  if (is_coordinator) {
    RETURN_IF_ERROR(CheckNotProvisioned(env, dir, *ca, AuditSignerName(name),
                                        PartyRole::kAuditSigner, records));
  }
  ASSIGN_OR_RETURN(std::optional<CoordinatorRecord> coordinator, ReadCoordinatorRecord(env, dir));

  const std::string kit = project_layout::KitRelativePath(name);
  ASSIGN_OR_RETURN(IssuedParty party, ca->Issue(name, role, issue_options));
  records.push_back(RecordOf(party, kit));
  // A coordinator always gets its own audit-signing key: signing the log
  // with its TLS key would let whoever holds that key rewrite the log.
  std::optional<IssuedParty> audit_signer;
  if (is_coordinator) {
    ASSIGN_OR_RETURN(audit_signer, ca->Issue(AuditSignerName(name), PartyRole::kAuditSigner,
                                             AuditSignerOptions(options)));
    records.push_back(RecordOf(*audit_signer, kit));
  }
  RETURN_IF_ERROR(WriteKit(env, dir, name,
                           KitFiles(*ca, party, settings, coordinator,
                                    audit_signer.has_value() ? &*audit_signer : nullptr),
                           /*with_state_folder=*/is_coordinator));
  const absl::Status recorded = RecordParty(env, dir, *ca, records, party, settings);
  if (!recorded.ok()) {
    // An unrecorded kit would block the retry ("exists but is not in
    // issued.json") and hold a key nobody knows was issued.
    env.RemoveTree(absl::StrCat(dir, "/", kit)).IgnoreError();
    return recorded;
  }
  return party;
}

absl::StatusOr<IssuedParty> RenewParty(const std::string& dir, const std::string& name, int days,
                                       Env& env) {
  ASSIGN_OR_RETURN(std::unique_ptr<ProjectCa> ca, ProjectCa::Open(dir, env));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  ASSIGN_OR_RETURN(std::vector<IssuedRecord> records, ReadIssuedIndex(env, dir));
  ASSIGN_OR_RETURN(const size_t current, CurrentRecord(records, dir, name));
  const IssuedRecord& old = records[current];
  const std::string kit_dir = absl::StrCat(dir, "/", old.kit);
  const char* cert_file = old.role == PartyRole::kAuditSigner ? kAuditCertFile : "cert.pem";
  if (!env.FileExists(absl::StrCat(kit_dir, "/", cert_file))) {
    return absl::NotFoundError(absl::StrCat("kit folder '", kit_dir, "' holds no ", cert_file,
                                            "; renewal replaces the key and certificate of an "
                                            "existing kit"));
  }
  IssueOptions issue;
  issue.days = days;
  if (old.role == PartyRole::kCoordinator) {
    // Parties dial the coordinator by the names in its certificate.
    ASSIGN_OR_RETURN(std::string old_cert, env.ReadFile(kit_dir + "/cert.pem"));
    ASSIGN_OR_RETURN(CertificateInfo old_info, ParseCertificatePem(old_cert));
    issue.dns_names = old_info.dns_names;
    issue.ip_addresses = old_info.ip_addresses;
  }
  ASSIGN_OR_RETURN(IssuedParty party, ca->Issue(name, old.role, issue));

  // Recorded first, so that no key is ever on disk that issued.json does not
  // know of; undone if the kit cannot be changed.
  ASSIGN_OR_RETURN(SavedFile saved_index, SaveFile(env, project_layout::IndexPath(dir)));
  ASSIGN_OR_RETURN(SavedFile saved_project, SaveFile(env, project_layout::ProjectPath(dir)));
  absl::Status status = RecordRenewal(env, dir, *ca, std::move(records), current, party);
  if (status.ok()) status = ReplaceIdentity(env, kit_dir, party);
  if (!status.ok()) {
    status = WithRestore(status, env, saved_project);
    return WithRestore(status, env, saved_index);
  }
  return party;
}

absl::StatusOr<IssuedRecord> RevokeIssued(const std::string& dir, const std::string& name,
                                          const std::string& reason, Env& env) {
  ASSIGN_OR_RETURN(std::unique_ptr<ProjectCa> ca, ProjectCa::Open(dir, env));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  ASSIGN_OR_RETURN(std::vector<IssuedRecord> records, ReadIssuedIndex(env, dir));
  ASSIGN_OR_RETURN(const size_t current, CurrentRecord(records, dir, name));
  IssuedRecord& record = records[current];
  if (record.revoked()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the certificate of '", name, "' (serial ", record.serial_hex,
                     ") is already revoked (since ", FormatCertificateTime(record.revoked_at),
                     "); `fedmi provision renew ", name, "` issues a new one"));
  }
  record.revoked_at = absl::Now();
  record.revocation_reason = reason;
  RETURN_IF_ERROR(WriteIssuedIndex(env, dir, records));
  return records[current];
}

absl::StatusOr<std::string> ProjectCrl(const std::string& dir, int days, Env& env) {
  ASSIGN_OR_RETURN(std::unique_ptr<ProjectCa> ca, ProjectCa::Open(dir, env));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  ASSIGN_OR_RETURN(std::vector<IssuedRecord> records, ReadIssuedIndex(env, dir));
  std::vector<RevokedSerial> revoked;
  for (const IssuedRecord& record : records) {
    if (record.revoked()) revoked.push_back({record.serial_hex, record.revoked_at});
  }
  return ca->SignCrl(revoked, days);
}

absl::StatusOr<IssuedParty> AddAuditSigner(const std::string& dir, const std::string& coordinator,
                                           const IssueOptions& options, Env& env) {
  RETURN_IF_ERROR(ValidatePartyName(coordinator, "coordinator name"));
  ASSIGN_OR_RETURN(std::unique_ptr<ProjectCa> ca, ProjectCa::Open(dir, env));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  ASSIGN_OR_RETURN(std::vector<IssuedRecord> records, ReadIssuedIndex(env, dir));
  auto owner = std::find_if(records.begin(), records.end(), [&](const IssuedRecord& record) {
    return record.name == coordinator && record.role == PartyRole::kCoordinator;
  });
  if (owner == records.end()) {
    return absl::NotFoundError(
        absl::StrCat("no coordinator '", coordinator, "' in ", project_layout::IndexPath(dir)));
  }
  const std::string signer_name = AuditSignerName(coordinator);
  RETURN_IF_ERROR(
      CheckNotProvisioned(env, dir, *ca, signer_name, PartyRole::kAuditSigner, records));
  const std::string kit = owner->kit;
  const std::string kit_dir = absl::StrCat(dir, "/", kit);
  const std::string config_path = kit_dir + "/coordinator.toml";
  ASSIGN_OR_RETURN(std::string config, env.ReadFile(config_path));

  ASSIGN_OR_RETURN(IssuedParty signer,
                   ca->Issue(signer_name, PartyRole::kAuditSigner, AuditSignerOptions(options)));
  records.push_back(RecordOf(signer, kit));
  std::vector<std::string> written;
  absl::Status status;
  for (const KitFile& file : AuditSignerFiles(signer)) {
    const std::string path = absl::StrCat(kit_dir, "/", file.name);
    status = WriteFileAtomically(env, path, file.contents, file.mode, Publish::kExclusive);
    if (!status.ok()) break;
    written.push_back(path);
  }
  if (status.ok()) {
    status = WriteFileAtomically(env, config_path, absl::StrCat(config, AuditSignerConfigLines()));
    if (status.ok()) {
      status = WriteIssuedIndex(env, dir, records);
      if (!status.ok()) WriteFileAtomically(env, config_path, config).IgnoreError();
    }
  }
  if (!status.ok()) {
    // Keys nobody recorded must not stay behind.
    for (const std::string& path : written) env.RemoveFile(path).IgnoreError();
    return absl::Status(status.code(), absl::StrCat("cannot add the audit signer to kit '", kit_dir,
                                                    "': ", status.message()));
  }
  return signer;
}

absl::StatusOr<std::vector<IssuedRecord>> ListIssued(const std::string& dir, Env& env) {
  const std::string ca_cert = project_layout::CaCertPath(dir);
  if (!env.FileExists(ca_cert)) {
    return absl::NotFoundError(absl::StrCat("no project CA in '", dir, "' (", ca_cert,
                                            " is missing); run `fedmi provision init` first"));
  }
  return ReadIssuedIndex(env, dir);
}

}  // namespace fedmi
