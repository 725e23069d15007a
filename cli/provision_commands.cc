// `fedmi provision init|add-coordinator|add-site|add-admin|add-auditor|
// add-audit-signer|show|renew|revoke|crl`: the project CA, the kits (key,
// certificate, CA certificate, config) handed to each party, their renewal
// and the CRL. Runs offline, on the machine that keeps the CA key.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/crypto/revocation_list.h"
#include "common/provision/kits.h"

namespace fedmi::cli {
namespace {

constexpr int kMaxDays = 36500;

struct InitOptions {
  std::string project;
  std::string out;
  int days = 3650;
};

struct AddOptions {
  std::string dir = ".";
  std::string name;
  int days = 365;
  // Coordinator only.
  std::string host;
  std::vector<std::string> ips;
  int port = kDefaultCoordinatorPort;
};

struct ShowOptions {
  std::string dir = ".";
};

struct RenewOptions {
  std::string dir = ".";
  std::string name;
  int days = 365;
};

struct RevokeOptions {
  std::string dir = ".";
  std::string name;
  std::string reason;
};

struct CrlOptions {
  std::string dir = ".";
  std::string out;  // empty: <dir>/crl.pem; "-": stdout
  int days = 30;
};

std::string FormatUtc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", time, absl::UTCTimeZone());
}

std::string KitPath(const std::string& dir, const std::string& kit) {
  return (std::filesystem::path(dir) / kit).lexically_normal().string();
}

int64_t DaysLeft(absl::Time not_after, absl::Time now) {
  return static_cast<int64_t>(std::floor(absl::FDivDuration(not_after - now, absl::Hours(24))));
}

int CheckDays(int days) {
  if (days < 1 || days > kMaxDays) {
    return ReportUsageError(absl::StrCat("--days must be 1 to ", kMaxDays, ", got ", days));
  }
  return kExitOk;
}

int Init(const GlobalOptions& global, const InitOptions& options) {
  if (absl::Status valid = ValidatePartyName(options.project, "--project"); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  if (int code = CheckDays(options.days); code != kExitOk) return code;
  auto ca = ProjectCa::Create(options.out, options.project, options.days);
  if (!ca.ok()) return ReportError(ca.status());
  const CertificateInfo& info = (*ca)->ca_info();
  const std::string ca_dir = KitPath(options.out, "ca");

  if (global.json) {
    PrintJsonLine({{"project", options.project},
                   {"dir", options.out},
                   {"ca_cert", ca_dir + "/ca.crt"},
                   {"ca_key", ca_dir + "/ca.key"},
                   {"serial", info.serial_hex},
                   {"not_after", FormatCertificateTime(info.not_after)},
                   {"fingerprint", info.sha256_fingerprint}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "created the certificate authority of project '%s' in %s/\n"
      "  ca.crt  trusted by every party (each kit carries a copy as ca.pem); expires %s\n"
      "          SHA-256 %s\n"
      "  ca.key  signs every certificate of the project: keep it on this machine only,\n"
      "          readable by you alone; it never goes into a kit\n"
      "next: fedmi provision add-coordinator --dir %s --host <name sites dial>\n",
      options.project, ca_dir, FormatUtc(info.not_after), info.sha256_fingerprint, options.out);
  return kExitOk;
}

// What the operator does with a new kit, by role.
std::string CopyInstructions(PartyRole role, const std::string& name, const std::string& kit) {
  const std::string target = absl::StrCat("/etc/fedmi/", name);
  switch (role) {
    case PartyRole::kCoordinator:
      return absl::StrFormat(
          "copy %s/ to the coordinator host, e.g. to %s/, then run there:\n"
          "  fedmi-coordinator --config %s/coordinator.toml\n"
          "state (SQLite, models) goes to %s/state/ unless you change `db`.\n"
          "audit-key.pem signs the audit log and nothing else; whoever holds it and the TLS\n"
          "key.pem together could rewrite the log, so keep it apart (another volume or an\n"
          "HSM-backed file, readable by the coordinator's user alone; see docs/audit.md).\n",
          kit, target, target, target);
    case PartyRole::kSite:
      return absl::StrFormat(
          "copy %s/ to site '%s', e.g. to %s/, set `data` in client.toml (or pass --data),\n"
          "review policy.toml, then run there:\n"
          "  fedmi-client --config %s/client.toml --data /path/to/images\n",
          kit, name, target, target);
    case PartyRole::kAuditSigner:
      return absl::StrFormat(
          "audit-key.pem and audit-cert.pem are in %s/, and its coordinator.toml names them;\n"
          "copy them to the coordinator host and restart it: from then on it signs the audit\n"
          "log with this key only. Keep audit-key.pem apart from the TLS key.pem "
          "(docs/audit.md).\n",
          kit);
    case PartyRole::kAdmin:
    case PartyRole::kAuditor:
      return absl::StrFormat(
          "copy %s/ to %s's workstation, e.g. to ~/.fedmi/, then:\n"
          "  fedmi --config ~/.fedmi/fedmi.toml site list   (or export "
          "FEDMI_CONFIG=~/.fedmi/fedmi.toml)\n",
          kit, name);
  }
  return "";
}

int Add(const GlobalOptions& global, PartyRole role, const AddOptions& options) {
  const bool is_coordinator = role == PartyRole::kCoordinator;
  if (absl::Status valid =
          ValidatePartyName(options.name, absl::StrCat(PartyRoleName(role), " name"));
      !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  if (int code = CheckDays(options.days); code != kExitOk) return code;
  if (is_coordinator && (options.port < 1 || options.port > 65535)) {
    return ReportUsageError(absl::StrCat("--port must be 1 to 65535, got ", options.port));
  }

  IssueOptions issue;
  issue.days = options.days;
  KitSettings settings;
  if (is_coordinator) {
    issue.ip_addresses = options.ips;
    settings.coordinator_host = options.host;
    settings.coordinator_port = options.port;
  }
  const bool is_audit_signer = role == PartyRole::kAuditSigner;
  // An audit signer goes into the kit of the coordinator `options.name`.
  auto party = is_audit_signer ? AddAuditSigner(options.dir, options.name, issue)
                               : AddParty(options.dir, options.name, role, issue, settings);
  if (!party.ok()) return ReportError(party.status());
  const CertificateInfo& info = party->info;
  const std::string kit = KitPath(options.dir, absl::StrCat("kits/", options.name));

  bool has_coordinator = is_coordinator;
  if (auto records = ListIssued(options.dir); records.ok()) {
    for (const IssuedRecord& record : *records) {
      if (record.role == PartyRole::kCoordinator) has_coordinator = true;
    }
  }

  if (global.json) {
    PrintJsonLine({{"name", party->name},
                   {"role", PartyRoleName(role)},
                   {"project", info.project},
                   {"serial", info.serial_hex},
                   {"not_before", FormatCertificateTime(info.not_before)},
                   {"not_after", FormatCertificateTime(info.not_after)},
                   {"fingerprint", info.sha256_fingerprint},
                   {"dns_names", info.dns_names},
                   {"ip_addresses", info.ip_addresses},
                   {"kit", kit},
                   {"audit_signer", is_coordinator || is_audit_signer
                                        ? nlohmann::json(AuditSignerName(options.name))
                                        : nlohmann::json(nullptr)},
                   {"coordinator_known", has_coordinator}});
    return kExitOk;
  }
  std::cout << absl::StrFormat("issued %s '%s' of project '%s': serial %s, expires %s\n",
                               PartyRoleName(role), party->name, info.project, info.serial_hex,
                               FormatUtc(info.not_after));
  if (is_coordinator) {
    std::cout << absl::StrFormat("issued audit-signer '%s' (audit-key.pem, audit-cert.pem)\n",
                                 AuditSignerName(options.name));
    std::cout << absl::StrFormat(
        "  names: %s\n",
        absl::StrJoin({absl::StrJoin(info.dns_names, ", "), absl::StrJoin(info.ip_addresses, ", ")},
                      ", "));
    std::cout << absl::StrFormat("  SHA-256 %s (pinned in every site kit made from now on)\n",
                                 info.sha256_fingerprint);
  }
  std::cout << absl::StrFormat("kit: %s/\n", kit);
  std::cout << CopyInstructions(role, party->name, kit);
  std::cout << "key.pem is this party's private key: move the kit over a secure channel and "
               "keep key.pem readable by the fedmi user only.\n";
  if (!has_coordinator) {
    std::cout << "note: no coordinator is provisioned yet, so the config says "
                 "coordinator = \"HOST:7000\"; edit it"
              << (role == PartyRole::kSite ? " and set coordinator_fingerprint in policy.toml" : "")
              << ", or run add-coordinator first.\n";
  }
  std::cout << std::flush;
  return kExitOk;
}

int Show(const GlobalOptions& global, const ShowOptions& options) {
  auto ca = ProjectCa::Open(options.dir);
  if (!ca.ok()) return ReportError(ca.status());
  auto records = ListIssued(options.dir);
  if (!records.ok()) return ReportError(records.status());
  const absl::Time now = absl::Now();
  const CertificateInfo& ca_info = (*ca)->ca_info();

  if (global.json) {
    nlohmann::json parties = nlohmann::json::array();
    for (const IssuedRecord& record : *records) {
      parties.push_back(
          {{"name", record.name},
           {"role", PartyRoleName(record.role)},
           {"serial", record.serial_hex},
           {"not_before", FormatCertificateTime(record.not_before)},
           {"not_after", FormatCertificateTime(record.not_after)},
           {"days_left", DaysLeft(record.not_after, now)},
           {"fingerprint", record.sha256_fingerprint},
           {"kit", KitPath(options.dir, record.kit)},
           {"revoked_at", record.revoked()
                              ? nlohmann::json(FormatCertificateTime(record.revoked_at))
                              : nlohmann::json(nullptr)},
           {"revocation_reason", record.revoked() ? nlohmann::json(record.revocation_reason)
                                                  : nlohmann::json(nullptr)}});
    }
    PrintJsonLine({{"project", (*ca)->project()},
                   {"dir", options.dir},
                   {"ca_not_after", FormatCertificateTime(ca_info.not_after)},
                   {"ca_fingerprint", ca_info.sha256_fingerprint},
                   {"parties", std::move(parties)}});
    return kExitOk;
  }
  std::cout << absl::StrFormat("project '%s', CA expires %s (%d days left)\n", (*ca)->project(),
                               FormatUtc(ca_info.not_after), DaysLeft(ca_info.not_after, now));
  if (records->empty()) {
    std::cout << "no parties provisioned yet; next: fedmi provision add-coordinator --dir "
              << options.dir << " --host <name sites dial>" << std::endl;
    return kExitOk;
  }
  constexpr char kFormat[] = "%-20s  %-11s  %-32s  %-20s  %9s  %s\n";
  std::cout << absl::StrFormat(kFormat, "NAME", "ROLE", "SERIAL", "EXPIRES (UTC)", "DAYS LEFT",
                               "KIT");
  for (const IssuedRecord& record : *records) {
    const int64_t days_left = DaysLeft(record.not_after, now);
    std::cout << absl::StrFormat(
        kFormat, record.name, PartyRoleName(record.role), record.serial_hex,
        absl::FormatTime("%Y-%m-%d %H:%M", record.not_after, absl::UTCTimeZone()),
        record.revoked()          ? std::string("revoked")
        : record.not_after <= now ? std::string("expired")
                                  : absl::StrCat(days_left),
        KitPath(options.dir, record.kit));
  }
  std::cout << std::flush;
  return kExitOk;
}

int Renew(const GlobalOptions& global, const RenewOptions& options) {
  if (absl::Status valid = ValidatePartyName(options.name, "name"); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  if (int code = CheckDays(options.days); code != kExitOk) return code;
  auto party = RenewParty(options.dir, options.name, options.days);
  if (!party.ok()) return ReportError(party.status());
  const CertificateInfo& info = party->info;
  const std::string kit = KitPath(options.dir, absl::StrCat("kits/", options.name));
  if (global.json) {
    PrintJsonLine({{"name", party->name},
                   {"role", PartyRoleName(party->role)},
                   {"serial", info.serial_hex},
                   {"not_after", FormatCertificateTime(info.not_after)},
                   {"fingerprint", info.sha256_fingerprint},
                   {"kit", kit}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "renewed %s '%s': new key and certificate, serial %s, expires %s\n"
      "  %s/key.pem and cert.pem replaced; the config is unchanged\n"
      "  the old certificate is marked revoked in issued.json\n"
      "next: copy key.pem and cert.pem to the party over a secure channel, then\n"
      "  fedmi provision crl --dir %s   and give the CRL to the coordinator and every site\n",
      PartyRoleName(party->role), party->name, info.serial_hex, FormatUtc(info.not_after), kit,
      options.dir);
  if (party->role == PartyRole::kCoordinator) {
    std::cout << absl::StrFormat(
        "the coordinator's fingerprint is now %s: update coordinator_fingerprint in every "
        "site's policy.toml (kits made from now on have it)\n",
        info.sha256_fingerprint);
  }
  std::cout << std::flush;
  return kExitOk;
}

int RevokeCertificate(const GlobalOptions& global, const RevokeOptions& options) {
  if (absl::Status valid = ValidatePartyName(options.name, "name"); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  auto record = RevokeIssued(options.dir, options.name, options.reason);
  if (!record.ok()) return ReportError(record.status());
  if (global.json) {
    PrintJsonLine({{"name", record->name},
                   {"role", PartyRoleName(record->role)},
                   {"serial", record->serial_hex},
                   {"revoked_at", FormatCertificateTime(record->revoked_at)},
                   {"reason", record->revocation_reason}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "certificate of %s '%s' (serial %s) marked revoked in issued.json\n"
      "next: fedmi provision crl --dir %s, and give the CRL to the coordinator and every site;\n"
      "  to refuse '%s' at the coordinator at once: fedmi revoke %s --role %s --reason ...\n",
      PartyRoleName(record->role), record->name, record->serial_hex, options.dir, record->name,
      record->name, PartyRoleName(record->role));
  return kExitOk;
}

int WriteCrl(const GlobalOptions& global, const CrlOptions& options) {
  if (int code = CheckDays(options.days); code != kExitOk) return code;
  auto pem = ProjectCrl(options.dir, options.days);
  if (!pem.ok()) return ReportError(pem.status());
  // Read back as every party will read it: what it lists is what it says.
  auto ca = ProjectCa::Open(options.dir);
  if (!ca.ok()) return ReportError(ca.status());
  auto crl = RevocationList::FromPem(*pem, (*ca)->ca_cert_pem());
  if (!crl.ok()) return ReportError(crl.status());
  const std::set<std::string>& serials = crl->serials();
  const std::string out = options.out.empty() ? KitPath(options.dir, "crl.pem") : options.out;
  if (out == "-") {
    std::cout << *pem << std::flush;
    return kExitOk;
  }
  if (absl::Status written = WriteFileAtomically(*Env::Default(), out, *pem, 0644); !written.ok()) {
    return ReportError(written);
  }
  if (global.json) {
    PrintJsonLine({{"crl", out}, {"serials", serials}, {"next_update_days", options.days}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "wrote %s: %d revoked certificate(s), signed by the project CA; next update in %d days\n"
      "give it to the coordinator (crl = \"...\" in coordinator.toml, or --crl) and to every "
      "site (crl in client.toml); they read it at start\n",
      out, serials.size(), options.days);
  return kExitOk;
}

void AddPartyCommand(CLI::App* provision, PartyRole role, const std::string& description,
                     GlobalOptions& global, CommandResult& result) {
  auto options = std::make_shared<AddOptions>();
  const bool is_coordinator = role == PartyRole::kCoordinator;
  CLI::App* add = provision->add_subcommand(absl::StrCat("add-", PartyRoleName(role)), description);
  if (is_coordinator) {
    options->name = "coordinator";
    add->add_option("--host", options->host,
                    "host name or IP address sites dial (goes into the certificate)")
        ->required();
    add->add_option("--ip", options->ips, "another IP address for the certificate (repeatable)");
    add->add_option("--port", options->port, "port the coordinator listens on")
        ->capture_default_str();
  } else if (role == PartyRole::kAuditSigner) {
    add->add_option("name", options->name,
                    "the coordinator whose kit gets the audit-signing key (its CN: <name>-audit)")
        ->required();
  } else {
    add->add_option("name", options->name,
                    absl::StrCat("the ", PartyRoleName(role),
                                 "'s name: 1-64 of [A-Za-z0-9._-]; its certificate's CN"))
        ->required();
  }
  add->add_option("--dir", options->dir, "project directory made by `fedmi provision init`")
      ->capture_default_str();
  add->add_option("--days", options->days, "validity of the certificate in days")
      ->capture_default_str();
  AddJsonFlag(add, global);
  add->callback([&global, &result, role, options] {
    RunCommand(result, [&] { return Add(global, role, *options); });
  });
}

}  // namespace

void AddProvisionCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* provision = app.add_subcommand(
      "provision",
      "Project certificate authority and per-party kits for mutual TLS (runs offline)");
  provision->require_subcommand(1);

  auto init_options = std::make_shared<InitOptions>();
  CLI::App* init = provision->add_subcommand(
      "init", "Create a project CA in a new directory (<out>/ca/ca.key and ca.crt)");
  init->add_option("--project", init_options->project,
                   "project name: 1-64 of [A-Za-z0-9._-]; goes into every certificate")
      ->required();
  init->add_option("--out", init_options->out, "project directory (created)")->required();
  init->add_option("--days", init_options->days, "validity of the CA in days")
      ->capture_default_str();
  AddJsonFlag(init, global);
  init->callback([&global, &result, init_options] {
    RunCommand(result, [&] { return Init(global, *init_options); });
  });

  AddPartyCommand(provision, PartyRole::kCoordinator,
                  "Issue the coordinator's server certificate and kit (kits/coordinator/)", global,
                  result);
  AddPartyCommand(provision, PartyRole::kSite,
                  "Issue a site's client certificate and kit (client.toml, policy.toml)", global,
                  result);
  AddPartyCommand(provision, PartyRole::kAdmin,
                  "Issue an administrator's client certificate and kit (fedmi.toml)", global,
                  result);
  AddPartyCommand(provision, PartyRole::kAuditor,
                  "Issue an auditor's client certificate and kit (fedmi.toml)", global, result);
  AddPartyCommand(provision, PartyRole::kAuditSigner,
                  "Issue the audit-log signing key of a coordinator provisioned without one, into "
                  "its kit (audit-key.pem, audit-cert.pem; coordinator.toml names them)",
                  global, result);

  auto show_options = std::make_shared<ShowOptions>();
  CLI::App* show = provision->add_subcommand(
      "show", "List issued certificates: name, role, serial, expiry, days left, kit");
  show->add_option("--dir", show_options->dir, "project directory")->capture_default_str();
  AddJsonFlag(show, global);
  show->callback([&global, &result, show_options] {
    RunCommand(result, [&] { return Show(global, *show_options); });
  });

  auto renew_options = std::make_shared<RenewOptions>();
  CLI::App* renew = provision->add_subcommand(
      "renew",
      "Re-key a party: a fresh key and certificate replace key.pem and cert.pem in its kit "
      "(audit-key.pem and audit-cert.pem for an audit signer, <coordinator>-audit); the config "
      "is untouched and a coordinator keeps its names. The old certificate is marked revoked "
      "for the next `provision crl`");
  renew->add_option("NAME", renew_options->name, "the party's name")->required();
  renew->add_option("--dir", renew_options->dir, "project directory")->capture_default_str();
  renew->add_option("--days", renew_options->days, "validity of the new certificate in days")
      ->capture_default_str();
  AddJsonFlag(renew, global);
  renew->callback([&global, &result, renew_options] {
    RunCommand(result, [&] { return Renew(global, *renew_options); });
  });

  auto revoke_options = std::make_shared<RevokeOptions>();
  CLI::App* revoke = provision->add_subcommand(
      "revoke",
      "Mark a party's current certificate revoked in issued.json, for the next `provision crl` "
      "(offline; `fedmi revoke` refuses the name at the coordinator at once)");
  revoke->add_option("NAME", revoke_options->name, "the party's name")->required();
  revoke->add_option("--reason", revoke_options->reason, "why; recorded in issued.json")
      ->required();
  revoke->add_option("--dir", revoke_options->dir, "project directory")->capture_default_str();
  AddJsonFlag(revoke, global);
  revoke->callback([&global, &result, revoke_options] {
    RunCommand(result, [&] { return RevokeCertificate(global, *revoke_options); });
  });

  auto crl_options = std::make_shared<CrlOptions>();
  CLI::App* crl = provision->add_subcommand(
      "crl",
      "Write the project's certificate revocation list (PEM, signed by the CA) listing every "
      "certificate revoked or replaced by renewal");
  crl->add_option("--dir", crl_options->dir, "project directory")->capture_default_str();
  crl->add_option("--out", crl_options->out,
                  "where to write it (default <dir>/crl.pem; - for stdout)");
  crl->add_option("--days", crl_options->days,
                  "days until its next-update date (a hint to parties; not enforced)")
      ->capture_default_str();
  AddJsonFlag(crl, global);
  crl->callback([&global, &result, crl_options] {
    RunCommand(result, [&] { return WriteCrl(global, *crl_options); });
  });
}

}  // namespace fedmi::cli
