// The config files in each party's kit: coordinator.toml, client.toml and
// policy.toml for a site, fedmi.toml for admins and auditors. Paths in them
// are relative to the kit folder. Pure functions of their arguments; the
// text is what `fedmi-coordinator`, `fedmi-client` and `fedmi` parse (see
// common/base/cli_config.h), so a change here is a change to those formats.
#ifndef FEDMI_COMMON_PROVISION_KIT_TEMPLATES_H_
#define FEDMI_COMMON_PROVISION_KIT_TEMPLATES_H_

#include <optional>
#include <string>

#include "common/crypto/identity.h"
#include "common/provision/issued_index.h"

namespace fedmi {

inline constexpr int kDefaultCoordinatorPort = 7000;

// "host:port", or "[host]:port" for an IPv6 address.
std::string HostPort(const std::string& host, int port);

// Names the audit signer's files (AuditSignerConfigLines) too.
std::string CoordinatorConfig(const std::string& project, const std::string& name, int port);
// The lines of coordinator.toml that name the audit-signing key and
// certificate, with a comment on where the key may live instead.
std::string AuditSignerConfigLines();

// `coordinator` nullopt: no coordinator was provisioned yet, and the config
// names the placeholder "HOST:7000" with a comment saying what to replace.
std::string SiteConfig(const std::string& project, const std::string& name,
                       const std::optional<CoordinatorRecord>& coordinator);
// Safe defaults and the coordinator's certificate fingerprint.
std::string SitePolicyConfig(const std::optional<CoordinatorRecord>& coordinator);
// For admins and auditors.
std::string OperatorConfig(const std::string& project, const std::string& name, PartyRole role,
                           const std::optional<CoordinatorRecord>& coordinator);

}  // namespace fedmi

#endif  // FEDMI_COMMON_PROVISION_KIT_TEMPLATES_H_
