#include "common/crypto/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/base/status.h"
#include "common/crypto/openssl_util.h"
#include "common/crypto/sha256.h"

namespace fedmi {
namespace {

// ---------------------------------------------------------------------------
// OpenSSL ownership.

template <typename T, void (*Free)(T*)>
using OpenSslDeleter = openssl::Deleter<T, Free>;
void FreeBio(BIO* bio) { BIO_free(bio); }
void FreeGeneralNames(GENERAL_NAMES* names) { sk_GENERAL_NAME_pop_free(names, GENERAL_NAME_free); }

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, FreeBio>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES, FreeGeneralNames>>;
using ExtensionPtr =
    std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION, X509_EXTENSION_free>>;

// Drains OpenSSL's thread-local error queue into one line, so an error never
// leaks into an unrelated later call.
std::string TakeOpenSslErrors() { return openssl::TakeErrors(); }
absl::Status OpenSslError(absl::string_view what) { return openssl::Error(what); }

BioPtr ReadOnlyBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size > 0 ? static_cast<size_t>(size) : 0);
}

// Never prompts on the terminal for an encrypted key.
int NoPassword(char*, int, int, void*) { return 0; }

absl::StatusOr<X509Ptr> ReadCertificate(const std::string& pem) {
  BioPtr bio = ReadOnlyBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("not a PEM certificate: ", TakeOpenSslErrors()));
  }
  return cert;
}

absl::StatusOr<PkeyPtr> ReadPrivateKey(const std::string& pem) {
  BioPtr bio = ReadOnlyBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an unencrypted PEM private key: ", TakeOpenSslErrors()));
  }
  if (!EVP_PKEY_is_a(key.get(), "EC")) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an EC private key, got ", EVP_PKEY_get0_type_name(key.get())));
  }
  return key;
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("writing certificate PEM");
  return BioContents(bio.get());
}

absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("writing private key PEM");
  }
  return BioContents(bio.get());
}

absl::StatusOr<PkeyPtr> GenerateP256Key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslError("generating an ECDSA P-256 key");
  return key;
}

// ---------------------------------------------------------------------------
// Reading certificates.

std::string NameEntry(const X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int size = ASN1_STRING_to_UTF8(&utf8, data);
  if (size < 0) {
    TakeOpenSslErrors();
    return "";
  }
  std::string value(reinterpret_cast<char*>(utf8), size);
  OPENSSL_free(utf8);
  return value;
}

absl::Time AsnTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) {
    TakeOpenSslErrors();
    return absl::InfinitePast();
  }
  return absl::FromTimeT(timegm(&tm));
}

std::string IpAddressText(const ASN1_OCTET_STRING* ip) {
  char text[INET6_ADDRSTRLEN] = {};
  const unsigned char* bytes = ASN1_STRING_get0_data(ip);
  int size = ASN1_STRING_length(ip);
  if (size == 4 && inet_ntop(AF_INET, bytes, text, sizeof(text)) != nullptr) return text;
  if (size == 16 && inet_ntop(AF_INET6, bytes, text, sizeof(text)) != nullptr) return text;
  return "";
}

absl::StatusOr<CertificateInfo> Describe(X509* cert) {
  CertificateInfo info;
  const X509_NAME* subject = X509_get_subject_name(cert);
  info.common_name = NameEntry(subject, NID_commonName);
  info.role_name = NameEntry(subject, NID_organizationalUnitName);
  info.project = NameEntry(subject, NID_organizationName);
  info.issuer_common_name = NameEntry(X509_get_issuer_name(cert), NID_commonName);

  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (serial == nullptr) return OpenSslError("reading the certificate serial");
  char* hex = BN_bn2hex(serial.get());
  info.serial_hex = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);

  info.not_before = AsnTime(X509_get0_notBefore(cert));
  info.not_after = AsnTime(X509_get0_notAfter(cert));

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_size) != 1) {
    return OpenSslError("hashing the certificate");
  }
  info.sha256_fingerprint =
      HexEncode(absl::string_view(reinterpret_cast<char*>(digest), digest_size));

  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                  ASN1_STRING_length(dns));
    } else if (name->type == GEN_IPADD) {
      std::string ip = IpAddressText(name->d.iPAddress);
      if (!ip.empty()) info.ip_addresses.push_back(std::move(ip));
    }
  }
  return info;
}

std::string Quoted(const CertificateInfo& info) { return absl::StrCat("'", info.common_name, "'"); }

// ---------------------------------------------------------------------------
// Issuing certificates.

bool IsIpAddress(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

absl::Status ValidateDnsName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 253 && name.front() != '.' && name.front() != '-';
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') ok = false;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name, "' is not a DNS name (letters, digits, '-' and '.', at most 253 characters)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateIpAddress(const std::string& ip) {
  if (!IsIpAddress(ip)) {
    return absl::InvalidArgumentError(absl::StrCat("'", ip, "' is not an IPv4 or IPv6 address"));
  }
  return absl::OkStatus();
}

void AddUnique(std::vector<std::string>& list, const std::string& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

absl::Status AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return OpenSslError(absl::StrCat("setting subject ", field));
  }
  return absl::OkStatus();
}

absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (extension == nullptr || X509_add_ext(cert, extension.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::Status AddSubjectAltNames(X509* cert, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty()) return absl::OkStatus();
  // Built as structures rather than an "DNS:a,IP:b" config string, so that no
  // name can smuggle in another entry.
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  for (const std::string& dns : dns_names) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    ASN1_STRING_set(value, dns.data(), static_cast<int>(dns.size()));
    GENERAL_NAME_set0_value(name, GEN_DNS, value);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  for (const std::string& ip : ip_addresses) {
    ASN1_OCTET_STRING* value = a2i_IPADDRESS(ip.c_str());
    if (value == nullptr) return OpenSslError(absl::StrCat("encoding IP address ", ip));
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_IPADD, value);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("adding subjectAltName");
  }
  return absl::OkStatus();
}

absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return OpenSslError("drawing a serial number");
  // Positive, and always 32 hex digits so that serials line up in tables.
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  BignumPtr serial(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (serial == nullptr ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    return OpenSslError("setting the serial number");
  }
  return absl::OkStatus();
}

struct CertificateRequest {
  std::string common_name;
  std::string organizational_unit;  // empty for the CA
  std::string organization;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  bool server = false;  // EKU serverAuth rather than clientAuth
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

// Makes and signs a certificate for `subject_key`. `issuer` null means
// self-signed with `subject_key`.
absl::StatusOr<X509Ptr> MakeCertificate(const CertificateRequest& request, EVP_PKEY* subject_key,
                                        X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1) return OpenSslError("X509_new");
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(request.not_before)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(request.not_after)) == nullptr) {
    return OpenSslError("setting the validity period");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddNameEntry(subject, "O", request.organization));
  if (!request.organizational_unit.empty()) {
    RETURN_IF_ERROR(AddNameEntry(subject, "OU", request.organizational_unit));
  }
  RETURN_IF_ERROR(AddNameEntry(subject, "CN", request.common_name));
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OpenSslError("setting issuer and public key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  if (request.is_ca) {
    RETURN_IF_ERROR(
        AddConfExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    RETURN_IF_ERROR(
        AddConfExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  } else {
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_ext_key_usage,
                                     request.server ? "serverAuth" : "clientAuth"));
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
    RETURN_IF_ERROR(
        AddConfExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
    RETURN_IF_ERROR(AddSubjectAltNames(cert.get(), request.dns_names, request.ip_addresses));
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : subject_key, EVP_sha256()) <= 0) {
    return OpenSslError("signing the certificate");
  }
  return cert;
}

// ---------------------------------------------------------------------------
// Files.

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  int error = errno;
  std::string message = absl::StrCat("cannot ", what, " '", path, "': ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string RandomSuffix() {
  unsigned char bytes[6];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) TakeOpenSslErrors();
  return absl::StrCat(getpid(), "-",
                      HexEncode(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes))));
}

// Creates `path` (which must not exist) with `mode` from the start, writes
// `contents` and syncs it.
absl::Status WriteNewFile(const std::string& path, absl::string_view contents, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("create", path);
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = ErrnoError("write", path);
      close(fd);
      unlink(path.c_str());
      return status;
    }
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    absl::Status status = ErrnoError("sync", path);
    close(fd);
    unlink(path.c_str());
    return status;
  }
  if (close(fd) != 0) {
    absl::Status status = ErrnoError("close", path);
    unlink(path.c_str());
    return status;
  }
  return absl::OkStatus();
}

// Writes a temporary file and renames it over `path`.
absl::Status ReplaceFile(const std::string& path, absl::string_view contents, mode_t mode) {
  const std::string temp = absl::StrCat(path, ".tmp-", RandomSuffix());
  RETURN_IF_ERROR(WriteNewFile(temp, contents, mode));
  if (rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status status = ErrnoError("rename into", path);
    unlink(temp.c_str());
    return status;
  }
  return absl::OkStatus();
}

// Writes a temporary file and links it to `path`, which must not exist: a
// file that appeared meanwhile is never replaced.
absl::Status PublishNewFile(const std::string& path, absl::string_view contents, mode_t mode) {
  const std::string temp = absl::StrCat(path, ".tmp-", RandomSuffix());
  RETURN_IF_ERROR(WriteNewFile(temp, contents, mode));
  absl::Status status;
  if (link(temp.c_str(), path.c_str()) != 0) status = ErrnoError("create", path);
  unlink(temp.c_str());
  return status;
}

absl::Status MakeDirectory(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return ErrnoError("create folder", path);
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat info;
  return lstat(path.c_str(), &info) == 0;
}

// An exclusive flock on <dir>/.provision.lock for as long as it lives.
class ProvisionLock {
 public:
  static absl::StatusOr<std::unique_ptr<ProvisionLock>> Acquire(const std::string& dir) {
    const std::string path = dir + "/.provision.lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError("open lock file", path);
    while (flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      absl::Status status = ErrnoError("lock", path);
      close(fd);
      return status;
    }
    return std::unique_ptr<ProvisionLock>(new ProvisionLock(fd));
  }
  ~ProvisionLock() { close(fd_); }
  ProvisionLock(const ProvisionLock&) = delete;
  ProvisionLock& operator=(const ProvisionLock&) = delete;

 private:
  explicit ProvisionLock(int fd) : fd_(fd) {}
  int fd_;
};

std::string CaKeyPath(const std::string& dir) { return dir + "/ca/ca.key"; }
std::string CaCertPath(const std::string& dir) { return dir + "/ca/ca.crt"; }
std::string IndexPath(const std::string& dir) { return dir + "/issued.json"; }
std::string ProjectPath(const std::string& dir) { return dir + "/project.json"; }
std::string KitRelativePath(const std::string& name) { return "kits/" + name; }

// ---------------------------------------------------------------------------
// issued.json and project.json.

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not a JSON object"));
  }
  return json;
}

absl::StatusOr<absl::Time> ParseCertificateTime(const std::string& text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", text, &time, &error)) {
    return absl::DataLossError(absl::StrCat("bad time '", text, "': ", error));
  }
  return time;
}

nlohmann::json RecordToJson(const IssuedRecord& record) {
  return {{"name", record.name},
          {"role", PartyRoleName(record.role)},
          {"serial", record.serial_hex},
          {"not_before", FormatCertificateTime(record.not_before)},
          {"not_after", FormatCertificateTime(record.not_after)},
          {"fingerprint", record.sha256_fingerprint},
          {"kit", record.kit}};
}

absl::StatusOr<IssuedRecord> RecordFromJson(const nlohmann::json& json, const std::string& path) {
  auto field = [&](const char* key) -> absl::StatusOr<std::string> {
    auto it = json.find(key);
    if (it == json.end() || !it->is_string()) {
      return absl::DataLossError(absl::StrCat("'", path, "': an entry lacks \"", key, "\""));
    }
    return it->get<std::string>();
  };
  IssuedRecord record;
  ASSIGN_OR_RETURN(record.name, field("name"));
  ASSIGN_OR_RETURN(std::string role, field("role"));
  ASSIGN_OR_RETURN(record.role, ParsePartyRole(role));
  ASSIGN_OR_RETURN(record.serial_hex, field("serial"));
  ASSIGN_OR_RETURN(std::string not_before, field("not_before"));
  ASSIGN_OR_RETURN(record.not_before, ParseCertificateTime(not_before));
  ASSIGN_OR_RETURN(std::string not_after, field("not_after"));
  ASSIGN_OR_RETURN(record.not_after, ParseCertificateTime(not_after));
  ASSIGN_OR_RETURN(record.sha256_fingerprint, field("fingerprint"));
  ASSIGN_OR_RETURN(record.kit, field("kit"));
  return record;
}

absl::StatusOr<std::vector<IssuedRecord>> ReadIndex(const std::string& dir) {
  const std::string path = IndexPath(dir);
  if (!PathExists(path)) return std::vector<IssuedRecord>{};
  ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  auto parties = json.find("parties");
  if (parties == json.end() || !parties->is_array()) {
    return absl::DataLossError(absl::StrCat("'", path, "' lacks a \"parties\" list"));
  }
  std::vector<IssuedRecord> records;
  for (const nlohmann::json& entry : *parties) {
    ASSIGN_OR_RETURN(IssuedRecord record, RecordFromJson(entry, path));
    records.push_back(std::move(record));
  }
  return records;
}

absl::Status WriteIndex(const std::string& dir, const std::vector<IssuedRecord>& records) {
  nlohmann::json parties = nlohmann::json::array();
  for (const IssuedRecord& record : records) parties.push_back(RecordToJson(record));
  nlohmann::json json = {{"version", 1}, {"parties", std::move(parties)}};
  return ReplaceFile(IndexPath(dir), json.dump(2) + "\n", 0644);
}

// Where parties reach the coordinator, as recorded by add-coordinator.
struct CoordinatorRecord {
  std::string name;
  std::string address;  // host:port
  std::string fingerprint;
};

absl::StatusOr<std::optional<CoordinatorRecord>> ReadCoordinatorRecord(const std::string& dir) {
  const std::string path = ProjectPath(dir);
  if (!PathExists(path)) return std::optional<CoordinatorRecord>();
  ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonFile(path));
  auto coordinator = json.find("coordinator");
  if (coordinator == json.end()) return std::optional<CoordinatorRecord>();
  if (!coordinator->is_object() || !coordinator->value("address", nlohmann::json()).is_string()) {
    return absl::DataLossError(absl::StrCat("'", path, "': bad \"coordinator\" entry"));
  }
  CoordinatorRecord record;
  record.name = coordinator->value("name", "");
  record.address = coordinator->value("address", "");
  record.fingerprint = coordinator->value("fingerprint", "");
  return std::optional<CoordinatorRecord>(std::move(record));
}

absl::Status WriteCoordinatorRecord(const std::string& dir, const std::string& project,
                                    const CoordinatorRecord& record, const std::string& host,
                                    int port) {
  nlohmann::json json = {{"project", project},
                         {"coordinator",
                          {{"name", record.name},
                           {"host", host},
                           {"port", port},
                           {"address", record.address},
                           {"fingerprint", record.fingerprint}}}};
  return ReplaceFile(ProjectPath(dir), json.dump(2) + "\n", 0644);
}

// ---------------------------------------------------------------------------
// Kit config files.

std::string TomlString(absl::string_view value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string HostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

constexpr char kTlsFiles[] =
    "cert = \"cert.pem\"\n"
    "key = \"key.pem\"\n"
    "ca = \"ca.pem\"\n";

std::string CoordinatorAddressLines(const std::optional<CoordinatorRecord>& coordinator) {
  if (coordinator.has_value())
    return absl::StrCat("coordinator = ", TomlString(coordinator->address), "\n");
  return absl::StrFormat(
      "# No coordinator was provisioned when this kit was made: replace HOST with\n"
      "# the coordinator's host name or IP address as written in its certificate.\n"
      "coordinator = \"HOST:%d\"\n",
      kDefaultCoordinatorPort);
}

std::string CoordinatorConfig(const std::string& project, const std::string& name, int port) {
  return absl::StrFormat(
      "# fedmi-coordinator config for coordinator '%s' of project '%s'.\n"
      "# Start with: fedmi-coordinator --config coordinator.toml\n"
      "# Relative paths are resolved against this file's folder.\n"
      "listen = \"0.0.0.0:%d\"\n"
      "db = \"state/coordinator.db\"\n"
      "%s",
      name, project, port, kTlsFiles);
}

std::string SiteConfig(const std::string& project, const std::string& name,
                       const std::optional<CoordinatorRecord>& coordinator) {
  return absl::StrCat("# fedmi-client config for site '", name, "' of project '", project,
                      "'.\n"
                      "# Start with: fedmi-client --config client.toml --data /path/to/images\n"
                      "# Relative paths are resolved against this file's folder.\n",
                      CoordinatorAddressLines(coordinator), "site = ", TomlString(name), "\n",
                      kTlsFiles,
                      "policy = \"policy.toml\"\n"
                      "# data = \"/path/to/images\"\n");
}

std::string SitePolicy(const std::optional<CoordinatorRecord>& coordinator) {
  const std::string fingerprint = coordinator.has_value() ? coordinator->fingerprint : "";
  return absl::StrCat(
      "# What this site agrees to take part in; runs asking for more are refused.\n"
      "allowed_models = [\"cnn\", \"resnet18\"]\n"
      "max_local_epochs = 10\n"
      "require_secure_aggregation = false\n"
      "require_differential_privacy = false\n"
      "# SHA-256 of the coordinator's certificate (printed by `fedmi provision add-coordinator`; "
      "also `fedmi provision show --json`).\n",
      fingerprint.empty() ? "# Empty: no coordinator was provisioned when this kit was made.\n"
                          : "",
      "coordinator_fingerprint = ", TomlString(fingerprint), "\n");
}

std::string OperatorConfig(const std::string& project, const std::string& name, PartyRole role,
                           const std::optional<CoordinatorRecord>& coordinator) {
  return absl::StrCat("# fedmi config for ", PartyRoleName(role), " '", name, "' of project '",
                      project,
                      "'.\n"
                      "# Use with: fedmi --config fedmi.toml site list  (or set FEDMI_CONFIG)\n"
                      "# Relative paths are resolved against this file's folder.\n",
                      CoordinatorAddressLines(coordinator), kTlsFiles);
}

struct KitFile {
  std::string name;
  std::string contents;
  mode_t mode;
};

// Writes the kit into a hidden temporary folder next to its final place and
// renames it there, so a kit folder is either complete or absent.
absl::Status WriteKit(const std::string& dir, const std::string& name,
                      const std::vector<KitFile>& files, bool with_state_folder) {
  const std::string kits = dir + "/kits";
  RETURN_IF_ERROR(MakeDirectory(kits, 0700));
  std::string temp = absl::StrCat(kits, "/.", name, ".tmp-XXXXXX");
  if (mkdtemp(temp.data()) == nullptr) return ErrnoError("create folder", temp);
  absl::Status status;
  for (const KitFile& file : files) {
    status = WriteNewFile(temp + "/" + file.name, file.contents, file.mode);
    if (!status.ok()) break;
  }
  if (status.ok() && with_state_folder) status = MakeDirectory(temp + "/state", 0700);
  const std::string final_path = kits + "/" + name;
  if (status.ok() && rename(temp.c_str(), final_path.c_str()) != 0) {
    status = errno == ENOTEMPTY || errno == EEXIST
                 ? absl::AlreadyExistsError(absl::StrCat("kit folder '", final_path, "' exists"))
                 : ErrnoError("rename into", final_path);
  }
  if (!status.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp, ignored);
  }
  return status;
}

constexpr absl::Duration kClockSkewAllowance = absl::Minutes(5);
constexpr int kMaxDays = 36500;

absl::Status ValidateDays(int days) {
  if (days < 1 || days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity must be 1 to ", kMaxDays, " days, got ", days));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions.

const char* PartyRoleName(PartyRole role) {
  switch (role) {
    case PartyRole::kCoordinator:
      return "coordinator";
    case PartyRole::kSite:
      return "site";
    case PartyRole::kAdmin:
      return "admin";
    case PartyRole::kAuditor:
      return "auditor";
  }
  return "unknown";
}

absl::StatusOr<PartyRole> ParsePartyRole(const std::string& name) {
  for (PartyRole role :
       {PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAdmin, PartyRole::kAuditor}) {
    if (name == PartyRoleName(role)) return role;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (expected coordinator, site, admin or auditor)"));
}

absl::Status ValidatePartyName(const std::string& name, absl::string_view what) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      ok = false;
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", name, "' must be 1 to 64 characters of letters, digits, '.', '_' and '-'"));
  }
  return absl::OkStatus();
}

std::string FormatCertificateTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<CertificateInfo> ParseCertificatePem(const std::string& pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(pem));
  return Describe(cert.get());
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("read", path);
  std::string contents;
  char buffer[65536];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = ErrnoError("read", path);
      close(fd);
      return status;
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return contents;
}

absl::Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_pem,
                            absl::Time now) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_pem));
  absl::StatusOr<X509Ptr> ca = ReadCertificate(ca_pem);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("project CA: ", ca.status().message()));
  }
  ASSIGN_OR_RETURN(CertificateInfo info, Describe(cert.get()));
  ASSIGN_OR_RETURN(CertificateInfo ca_info, Describe(ca->get()));

  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return OpenSslError("setting up certificate verification");
  }
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) == 1) return absl::OkStatus();
  TakeOpenSslErrors();

  const int error = X509_STORE_CTX_get_error(ctx.get());
  const bool about_ca = X509_STORE_CTX_get_error_depth(ctx.get()) > 0;
  const std::string subject = about_ca ? absl::StrCat("project CA '", ca_info.project, "'")
                                       : absl::StrCat("certificate ", Quoted(info));
  const CertificateInfo& failing = about_ca ? ca_info : info;
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return absl::PermissionDeniedError(
          absl::StrCat(subject, " expired at ", FormatCertificateTime(failing.not_after)));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return absl::PermissionDeniedError(absl::StrCat(subject, " is not valid before ",
                                                      FormatCertificateTime(failing.not_before)));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_AKID_SKID_MISMATCH:
      return absl::PermissionDeniedError(absl::StrCat(
          "certificate ", Quoted(info), " was not issued by project CA '", ca_info.project, "'"));
    default:
      return absl::PermissionDeniedError(
          absl::StrCat("certificate ", Quoted(info), " does not verify against project CA '",
                       ca_info.project, "': ", X509_verify_cert_error_string(error)));
  }
}

absl::StatusOr<std::string> SignWithKeyPem(const std::string& key_pem, absl::string_view data) {
  ASSIGN_OR_RETURN(std::unique_ptr<SigningKey> key, SigningKey::FromPem(key_pem));
  return key->Sign(data);
}

absl::StatusOr<std::unique_ptr<SigningKey>> SigningKey::FromPem(const std::string& key_pem) {
  ASSIGN_OR_RETURN(PkeyPtr key, ReadPrivateKey(key_pem));
  return std::unique_ptr<SigningKey>(new SigningKey(key.release()));
}

SigningKey::~SigningKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(key_)); }

absl::StatusOr<std::string> SigningKey::Sign(absl::string_view data) const {
  EVP_PKEY* key = static_cast<EVP_PKEY*>(key_);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t size = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, bytes, data.size()) != 1) {
    return OpenSslError("signing");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, bytes,
                     data.size()) != 1) {
    return OpenSslError("signing");
  }
  signature.resize(size);
  return signature;
}

absl::Status VerifyWithCertificatePem(const std::string& cert_pem, absl::string_view data,
                                      absl::string_view signature) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_pem));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr) return OpenSslError("reading the certificate's public key");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return OpenSslError("setting up signature verification");
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  TakeOpenSslErrors();
  if (rc != 1) {
    return absl::PermissionDeniedError(
        absl::StrCat("signature does not match certificate '",
                     NameEntry(X509_get_subject_name(cert.get()), NID_commonName), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ProjectCa>> ProjectCa::Create(const std::string& dir,
                                                             const std::string& project, int days) {
  RETURN_IF_ERROR(ValidatePartyName(project, "project name"));
  RETURN_IF_ERROR(ValidateDays(days));
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create folder '", dir, "': ", error.message()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  if (PathExists(CaKeyPath(dir)) || PathExists(CaCertPath(dir))) {
    return absl::AlreadyExistsError(absl::StrCat("'", dir, "' already holds a project CA (",
                                                 CaCertPath(dir),
                                                 "); a project's CA is never replaced"));
  }
  RETURN_IF_ERROR(MakeDirectory(dir + "/ca", 0700));

  ASSIGN_OR_RETURN(PkeyPtr key, GenerateP256Key());
  const absl::Time now = absl::Now();
  CertificateRequest request;
  request.common_name = absl::StrCat(project, " fedmi CA");
  request.organization = project;
  request.not_before = now - kClockSkewAllowance;
  request.not_after = now + absl::Hours(24) * days;
  request.is_ca = true;
  ASSIGN_OR_RETURN(X509Ptr cert, MakeCertificate(request, key.get(), nullptr, nullptr));
  ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(std::string cert_pem, CertificatePem(cert.get()));
  ASSIGN_OR_RETURN(CertificateInfo info, Describe(cert.get()));

  // The key first: a certificate without its key would look like a usable CA.
  RETURN_IF_ERROR(PublishNewFile(CaKeyPath(dir), key_pem, 0600));
  RETURN_IF_ERROR(PublishNewFile(CaCertPath(dir), cert_pem, 0644));
  return std::unique_ptr<ProjectCa>(
      new ProjectCa(project, std::move(key_pem), std::move(cert_pem), std::move(info)));
}

absl::StatusOr<std::unique_ptr<ProjectCa>> ProjectCa::Open(const std::string& dir) {
  absl::StatusOr<std::string> cert_pem = ReadFileToString(CaCertPath(dir));
  if (absl::IsNotFound(cert_pem.status())) {
    return absl::NotFoundError(absl::StrCat("no project CA in '", dir, "' (", CaCertPath(dir),
                                            " is missing); run `fedmi provision init` first"));
  }
  RETURN_IF_ERROR(cert_pem.status());
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(CaKeyPath(dir)));
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(*cert_pem));
  absl::StatusOr<PkeyPtr> key = ReadPrivateKey(key_pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(CaKeyPath(dir), ": ", key.status().message()));
  }
  if (X509_check_private_key(cert.get(), key->get()) != 1) {
    TakeOpenSslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat(CaKeyPath(dir), " does not belong to ", CaCertPath(dir)));
  }
  ASSIGN_OR_RETURN(CertificateInfo info, Describe(cert.get()));
  if (info.project.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(CaCertPath(dir), " names no project (no O in its subject)"));
  }
  std::string project = info.project;
  return std::unique_ptr<ProjectCa>(
      new ProjectCa(std::move(project), std::move(key_pem), std::move(*cert_pem), std::move(info)));
}

absl::StatusOr<IssuedParty> ProjectCa::Issue(const std::string& name, PartyRole role,
                                             const IssueOptions& options) const {
  RETURN_IF_ERROR(ValidatePartyName(name, absl::StrCat(PartyRoleName(role), " name")));
  RETURN_IF_ERROR(ValidateDays(options.days));
  CertificateRequest request;
  for (const std::string& dns : options.dns_names) {
    RETURN_IF_ERROR(ValidateDnsName(dns));
    AddUnique(request.dns_names, dns);
  }
  for (const std::string& ip : options.ip_addresses) {
    RETURN_IF_ERROR(ValidateIpAddress(ip));
    AddUnique(request.ip_addresses, ip);
  }
  request.server = role == PartyRole::kCoordinator;
  if (request.server) {
    // Tools and tests on the coordinator's own machine dial it by loopback.
    AddUnique(request.dns_names, "localhost");
    AddUnique(request.ip_addresses, "127.0.0.1");
  }
  request.common_name = name;
  request.organizational_unit = PartyRoleName(role);
  request.organization = project_;
  const absl::Time now = absl::Now();
  const absl::Time start = now + options.start_offset;
  request.not_before = start - kClockSkewAllowance;
  request.not_after = start + absl::Hours(24) * options.days;
  if (info_.not_after <= now) {
    return absl::FailedPreconditionError(
        absl::StrCat("the project CA expired at ", FormatCertificateTime(info_.not_after)));
  }
  if (request.not_after > info_.not_after) {
    return absl::FailedPreconditionError(
        absl::StrCat("a certificate for ", options.days, " days would expire at ",
                     FormatCertificateTime(request.not_after), ", after the project CA (",
                     FormatCertificateTime(info_.not_after), "); issue it for fewer days"));
  }

  ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCertificate(cert_pem_));
  ASSIGN_OR_RETURN(PkeyPtr ca_key, ReadPrivateKey(key_pem_));
  ASSIGN_OR_RETURN(PkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(X509Ptr cert, MakeCertificate(request, key.get(), ca_cert.get(), ca_key.get()));

  IssuedParty party;
  party.name = name;
  party.role = role;
  ASSIGN_OR_RETURN(party.key_pem, PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(party.cert_pem, CertificatePem(cert.get()));
  ASSIGN_OR_RETURN(party.info, Describe(cert.get()));
  return party;
}

absl::StatusOr<IssuedParty> AddParty(const std::string& dir, const std::string& name,
                                     PartyRole role, const IssueOptions& options,
                                     const KitSettings& settings) {
  RETURN_IF_ERROR(ValidatePartyName(name, absl::StrCat(PartyRoleName(role), " name")));
  const bool is_coordinator = role == PartyRole::kCoordinator;
  IssueOptions issue_options = options;
  if (is_coordinator) {
    if (settings.coordinator_host.empty()) {
      return absl::InvalidArgumentError("a coordinator needs the host name parties dial");
    }
    if (settings.coordinator_port < 1 || settings.coordinator_port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("port must be 1 to 65535, got ", settings.coordinator_port));
    }
    if (IsIpAddress(settings.coordinator_host)) {
      issue_options.ip_addresses.insert(issue_options.ip_addresses.begin(),
                                        settings.coordinator_host);
    } else {
      RETURN_IF_ERROR(ValidateDnsName(settings.coordinator_host));
      issue_options.dns_names.insert(issue_options.dns_names.begin(), settings.coordinator_host);
    }
  }

  ASSIGN_OR_RETURN(std::unique_ptr<ProjectCa> ca, ProjectCa::Open(dir));
  ASSIGN_OR_RETURN(std::unique_ptr<ProvisionLock> lock, ProvisionLock::Acquire(dir));
  ASSIGN_OR_RETURN(std::vector<IssuedRecord> records, ReadIndex(dir));
  for (const IssuedRecord& record : records) {
    if (record.name == name) {
      return absl::AlreadyExistsError(
          absl::StrCat(PartyRoleName(record.role), " '", name, "' is already provisioned (serial ",
                       record.serial_hex, ", expires ", FormatCertificateTime(record.not_after),
                       "); existing parties are never re-keyed"));
    }
    if (is_coordinator && record.role == PartyRole::kCoordinator) {
      return absl::AlreadyExistsError(
          absl::StrCat("project '", ca->project(), "' already has coordinator '", record.name,
                       "' (serial ", record.serial_hex, "); existing parties are never re-keyed"));
    }
  }
  const std::string kit = KitRelativePath(name);
  if (PathExists(dir + "/" + kit)) {
    return absl::AlreadyExistsError(
        absl::StrCat("kit folder '", dir, "/", kit,
                     "' exists but is not in issued.json; move it away to provision '", name, "'"));
  }
  ASSIGN_OR_RETURN(std::optional<CoordinatorRecord> coordinator, ReadCoordinatorRecord(dir));

  ASSIGN_OR_RETURN(IssuedParty party, ca->Issue(name, role, issue_options));

  std::vector<KitFile> files = {{"key.pem", party.key_pem, 0600},
                                {"cert.pem", party.cert_pem, 0644},
                                {"ca.pem", ca->ca_cert_pem(), 0644}};
  switch (role) {
    case PartyRole::kCoordinator:
      files.push_back({"coordinator.toml",
                       CoordinatorConfig(ca->project(), name, settings.coordinator_port), 0644});
      break;
    case PartyRole::kSite:
      files.push_back({"client.toml", SiteConfig(ca->project(), name, coordinator), 0644});
      files.push_back({"policy.toml", SitePolicy(coordinator), 0644});
      break;
    case PartyRole::kAdmin:
    case PartyRole::kAuditor:
      files.push_back({"fedmi.toml", OperatorConfig(ca->project(), name, role, coordinator), 0644});
      break;
  }
  RETURN_IF_ERROR(WriteKit(dir, name, files, /*with_state_folder=*/is_coordinator));

  IssuedRecord record;
  record.name = name;
  record.role = role;
  record.serial_hex = party.info.serial_hex;
  record.not_before = party.info.not_before;
  record.not_after = party.info.not_after;
  record.sha256_fingerprint = party.info.sha256_fingerprint;
  record.kit = kit;
  records.push_back(record);
  RETURN_IF_ERROR(WriteIndex(dir, records));

  if (is_coordinator) {
    CoordinatorRecord address;
    address.name = name;
    address.address = HostPort(settings.coordinator_host, settings.coordinator_port);
    address.fingerprint = party.info.sha256_fingerprint;
    RETURN_IF_ERROR(WriteCoordinatorRecord(dir, ca->project(), address, settings.coordinator_host,
                                           settings.coordinator_port));
  }
  return party;
}

absl::StatusOr<std::vector<IssuedRecord>> ListIssued(const std::string& dir) {
  if (!PathExists(CaCertPath(dir))) {
    return absl::NotFoundError(absl::StrCat("no project CA in '", dir, "' (", CaCertPath(dir),
                                            " is missing); run `fedmi provision init` first"));
  }
  return ReadIndex(dir);
}

}  // namespace fedmi
