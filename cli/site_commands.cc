// `fedmi site list|revoke`: the sites registered with the coordinator
// (`site revoke` is `fedmi revoke --role site`, cli/revoke_commands.cc).
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/base/names.h"
#include "common/crypto/identity.h"

namespace fedmi::cli {
namespace {

bool IsRevoked(const v1::SiteInfo& site) {
  return ParseSiteState(site.state()) == SiteState::kRevoked;
}

// Whole days until `unix_seconds`, rounded down; negative once it has passed.
int64_t DaysUntil(double unix_seconds) {
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  return static_cast<int64_t>(std::floor((unix_seconds - now) / 86400));
}

// "2026-05-01 (364 d left)", "2026-05-01 (expired)", or "-" when the
// coordinator does not know (a site that only ever connected with --insecure).
std::string FormatCertificateExpiry(double unix_seconds) {
  if (unix_seconds <= 0) return "-";
  const std::string date = absl::FormatTime(
      "%Y-%m-%d", absl::FromUnixSeconds(static_cast<int64_t>(unix_seconds)), absl::UTCTimeZone());
  const int64_t days = DaysUntil(unix_seconds);
  return days < 0 ? absl::StrCat(date, " (expired)") : absl::StrCat(date, " (", days, " d left)");
}

nlohmann::json SiteJson(const v1::SiteInfo& site) {
  const nlohmann::json null = nullptr;
  const bool expiry_known = site.certificate_expires() > 0;
  const bool revoked = IsRevoked(site);
  return {{"site", site.site()},
          {"state", site.state()},
          {"connected", site.connected()},
          {"last_seen", JsonNumber(site.last_seen())},
          {"train_examples", site.train_examples()},
          {"val_examples", site.val_examples()},
          {"registered_at", JsonNumber(site.registered_at())},
          {"certificate_expires", expiry_known ? JsonNumber(site.certificate_expires()) : null},
          {"certificate_days_left",
           expiry_known ? nlohmann::json(DaysUntil(site.certificate_expires())) : null},
          {"revoked_by", revoked ? nlohmann::json(site.revoked_by()) : null},
          {"revoked_at", revoked ? JsonNumber(site.revoked_at()) : null},
          {"revocation_reason", revoked ? nlohmann::json(site.revocation_reason()) : null}};
}

int ListSites(const GlobalOptions& global) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  return PrintListing(
      global, (*admin)->ListSites(), "sites", SiteJson, "no sites have registered",
      [](const std::vector<v1::SiteInfo>& sites) {
        constexpr char kFormat[] = "%-20s  %-7s  %-9s  %-36s  %-24s  %8s  %8s\n";
        std::cout << absl::StrFormat(kFormat, "SITE", "STATE", "CONNECTED", "LAST SEEN",
                                     "CERTIFICATE EXPIRES", "TRAIN", "VAL");
        for (const auto& site : sites) {
          std::string last_seen = site.last_seen() > 0
                                      ? absl::StrCat(FormatUnixTime(site.last_seen()), " (",
                                                     FormatAgo(site.last_seen()), ")")
                                      : "never";
          std::cout << absl::StrFormat(
              kFormat, site.site(), site.state(), site.connected() ? "yes" : "no", last_seen,
              FormatCertificateExpiry(site.certificate_expires()),
              absl::StrCat(site.train_examples()), absl::StrCat(site.val_examples()));
          if (IsRevoked(site)) {
            std::cout << "  revoked by " << (site.revoked_by().empty() ? "-" : site.revoked_by())
                      << " at " << FormatUnixTime(site.revoked_at()) << ": "
                      << (site.revocation_reason().empty() ? "(no reason given)"
                                                           : site.revocation_reason())
                      << "\n";
          }
        }
      });
}

}  // namespace

void AddSiteCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* site =
      app.add_subcommand("site", "Inspect the sites registered with the coordinator; revoke one");
  site->require_subcommand(1);
  CLI::App* list = site->add_subcommand(
      "list",
      "List sites: state (active/revoked), connection, last contact, certificate expiry, "
      "train/val example counts, and who revoked a revoked site, when and why");
  AddJsonFlag(list, global);
  list->callback([&global, &result] { RunCommand(result, [&] { return ListSites(global); }); });

  auto revoke_site = std::make_shared<std::string>();
  auto revoke_reason = std::make_shared<std::string>();
  CLI::App* revoke = site->add_subcommand(
      "revoke",
      "Revoke a site at once (admin only): its stream is closed, it leaves running rounds and "
      "its certificate is refused from then on, across coordinator restarts. The same as "
      "`fedmi revoke NAME --role site`");
  revoke->add_option("NAME", *revoke_site, "the site's name (its certificate's CN)")->required();
  revoke->add_option("--reason", *revoke_reason, "why, recorded with who revoked it and when");
  AddJsonFlag(revoke, global);
  revoke->callback([&global, &result, revoke_site, revoke_reason] {
    RunCommand(result, [&] { return RevokeByName(global, *revoke_site, "site", *revoke_reason); });
  });
}

}  // namespace fedmi::cli
