#include "common/provision/kit_templates.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedmi {
namespace {

std::string TomlString(absl::string_view value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

constexpr char kTlsFiles[] =
    "cert = \"cert.pem\"\n"
    "key = \"key.pem\"\n"
    "ca = \"ca.pem\"\n";

// Only the daemons read a CRL; `fedmi` itself would refuse the key.
constexpr char kCrlHint[] =
    "# The project's revocation list, once `fedmi provision crl` has written one:\n"
    "# crl = \"crl.pem\"\n";

std::string CoordinatorAddressLines(const std::optional<CoordinatorRecord>& coordinator) {
  if (coordinator.has_value())
    return absl::StrCat("coordinator = ", TomlString(coordinator->address), "\n");
  return absl::StrFormat(
      "# No coordinator was provisioned when this kit was made: replace HOST with\n"
      "# the coordinator's host name or IP address as written in its certificate.\n"
      "coordinator = \"HOST:%d\"\n",
      kDefaultCoordinatorPort);
}

}  // namespace

std::string HostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::string CoordinatorConfig(const std::string& project, const std::string& name, int port) {
  return absl::StrFormat(
      "# fedmi-coordinator config for coordinator '%s' of project '%s'.\n"
      "# Start with: fedmi-coordinator --config coordinator.toml\n"
      "# Relative paths are resolved against this file's folder.\n"
      "listen = \"0.0.0.0:%d\"\n"
      "db = \"state/coordinator.db\"\n"
      "%s%s%s",
      name, project, port, kTlsFiles, AuditSignerConfigLines(), kCrlHint);
}

std::string AuditSignerConfigLines() {
  return "# The audit log's own signing key, apart from the TLS key above, so that\n"
         "# holding the TLS key is not enough to rewrite the log. It may live on\n"
         "# another volume, readable by the coordinator's user alone: point\n"
         "# audit-key there (docs/audit.md).\n"
         "audit-key = \"audit-key.pem\"\n"
         "audit-cert = \"audit-cert.pem\"\n";
}

std::string SiteConfig(const std::string& project, const std::string& name,
                       const std::optional<CoordinatorRecord>& coordinator) {
  return absl::StrCat("# fedmi-client config for site '", name, "' of project '", project,
                      "'.\n"
                      "# Start with: fedmi-client --config client.toml --data /path/to/images\n"
                      "# Relative paths are resolved against this file's folder.\n",
                      CoordinatorAddressLines(coordinator), "site = ", TomlString(name), "\n",
                      kTlsFiles, kCrlHint,
                      "policy = \"policy.toml\"\n"
                      "# data = \"/path/to/images\"\n");
}

std::string SitePolicyConfig(const std::optional<CoordinatorRecord>& coordinator) {
  const std::string fingerprint = coordinator.has_value() ? coordinator->fingerprint : "";
  return absl::StrCat(
      "# What this site agrees to take part in; runs asking for more are refused.\n"
      "allowed_models = [\"cnn\", \"cnn-gn\", \"resnet18\"]\n"
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

}  // namespace fedmi
