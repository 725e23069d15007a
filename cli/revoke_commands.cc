// `fedmi revoke NAME` and `fedmi revocations`: revocation by name at the
// coordinator, for sites, admins and auditors. `fedmi site revoke` is the
// same command with the role fixed to site.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/crypto/identity.h"

namespace fedmi::cli {
namespace {

struct RevokeOptions {
  std::string name;
  std::string role;  // empty: a site the coordinator knows
  std::string reason;
};

nlohmann::json RevocationJson(const v1::Revocation& revocation) {
  return {{"name", revocation.name()},
          {"role", revocation.role()},
          {"revoked_by", revocation.revoked_by()},
          {"revoked_at", JsonNumber(revocation.revoked_at())},
          {"reason", revocation.reason()}};
}

int ListRevocations(const GlobalOptions& global) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  return PrintListing(
      global, (*admin)->ListRevocations(), "revocations", RevocationJson, "nobody has been revoked",
      [](const auto& revocations) {
        constexpr char kFormat[] = "%-20s  %-7s  %-23s  %-16s  %s\n";
        std::cout << absl::StrFormat(kFormat, "NAME", "ROLE", "REVOKED AT", "BY", "REASON");
        for (const auto& revocation : revocations) {
          std::cout << absl::StrFormat(kFormat, revocation.name(), revocation.role(),
                                       FormatUnixTime(revocation.revoked_at()),
                                       revocation.revoked_by(),
                                       revocation.reason().empty() ? "-" : revocation.reason());
        }
      });
}

}  // namespace

int RevokeByName(const GlobalOptions& global, const std::string& name, const std::string& role,
                 const std::string& reason) {
  if (absl::Status valid = ValidatePartyName(name, "name"); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto revocation = (*admin)->Revoke(name, role, reason);
  if (!revocation.ok()) return ReportError(revocation.status());
  if (global.json) {
    PrintJsonLine(RevocationJson(*revocation));
  } else {
    std::cout << revocation->role() << " '" << name
              << "' revoked; the coordinator refuses its certificate from now on, across "
                 "restarts, and has ended its open streams"
              << std::endl;
  }
  return kExitOk;
}

void AddRevokeCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  auto options = std::make_shared<RevokeOptions>();
  CLI::App* revoke = app.add_subcommand(
      "revoke",
      "Revoke a site, admin or auditor by name at once and for good (admin only): its open "
      "streams end and every later call is refused, across coordinator restarts. An admin "
      "cannot revoke itself. To refuse one certificate rather than a name, see `fedmi "
      "provision revoke` and `provision crl`");
  revoke->add_option("NAME", options->name, "the party's name (its certificate's CN)")->required();
  revoke->add_option("--reason", options->reason, "why; recorded with who revoked it and when")
      ->required();
  revoke
      ->add_option("--role", options->role,
                   "the role NAME holds: site, admin or auditor (default: a site the "
                   "coordinator knows; admins and auditors must be named so)")
      ->check(CLI::IsMember({"site", "admin", "auditor"}));
  AddJsonFlag(revoke, global);
  revoke->callback([&global, &result, options] {
    RunCommand(result,
               [&] { return RevokeByName(global, options->name, options->role, options->reason); });
  });

  CLI::App* list = app.add_subcommand(
      "revocations",
      "List every party revoked by name (sites, admins, auditors): role, when, by whom and why");
  AddJsonFlag(list, global);
  list->callback(
      [&global, &result] { RunCommand(result, [&] { return ListRevocations(global); }); });
}

}  // namespace fedmi::cli
