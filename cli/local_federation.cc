#include "cli/local_federation.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/base/names.h"
#include "common/base/status.h"

namespace fedmi::cli {

absl::StatusOr<LocalProject> LocalProject::Create(std::string dir, const std::string& ca_name,
                                                  std::string admin) {
  RETURN_IF_ERROR(ProjectCa::Create(dir, ca_name).status());
  KitSettings settings;
  settings.coordinator_host = "127.0.0.1";
  RETURN_IF_ERROR(AddParty(dir, "coordinator", PartyRole::kCoordinator, {}, settings).status());
  RETURN_IF_ERROR(AddParty(dir, admin, PartyRole::kAdmin, {}, {}).status());
  return LocalProject(std::move(dir), std::move(admin));
}

LocalProject LocalProject::Open(std::string dir, std::string admin) {
  return LocalProject(std::move(dir), std::move(admin));
}

LocalProject LocalProject::Insecure() { return LocalProject("", ""); }

absl::Status LocalProject::Add(const std::string& name, PartyRole role,
                               const IssueOptions& options) const {
  if (insecure()) return absl::OkStatus();
  return AddParty(dir_, name, role, options, {}).status();
}

std::string LocalProject::KitFile(const std::string& party, const std::string& file) const {
  return absl::StrCat(dir_, "/kits/", party, "/", file);
}

TransportOptions LocalProject::Transport(const std::string& party) const {
  TransportOptions transport;
  transport.insecure = insecure();
  if (!insecure()) {
    transport.cert_file = KitFile(party, "cert.pem");
    transport.key_file = KitFile(party, "key.pem");
    transport.ca_file = KitFile(party, "ca.pem");
  }
  return transport;
}

std::vector<std::string> LocalProject::TransportFlags(const std::string& party) const {
  if (insecure()) return {"--insecure"};
  const TransportOptions transport = Transport(party);
  return {"--cert", transport.cert_file, "--key", transport.key_file, "--ca", transport.ca_file};
}

absl::StatusOr<std::unique_ptr<LocalCoordinator>> LocalCoordinator::Start(
    const LocalProject& project, const CoordinatorOptions& options) {
  ASSIGN_OR_RETURN(std::string binary, FindBinary("fedmi-coordinator"));
  std::remove(options.port_file.c_str());
  std::vector<std::string> argv = {binary,         "--listen",        options.listen,
                                   "--port-file",  options.port_file, "--db",
                                   options.db_path};
  for (auto& flag : project.TransportFlags("coordinator")) argv.push_back(std::move(flag));
  if (!project.insecure()) {
    argv.insert(argv.end(), {"--audit-key", project.KitFile("coordinator", kAuditKeyFile),
                             "--audit-cert", project.KitFile("coordinator", kAuditCertFile)});
  }
  argv.insert(argv.end(), options.extra_flags.begin(), options.extra_flags.end());
  ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> process,
                   ChildProcess::Spawn(argv, options.log_path, options.env));
  const absl::Time deadline = absl::Now() + options.start_timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(options.port_file);
    int port = 0;
    if (in >> port && port > 0) {
      const std::string address = absl::StrCat("127.0.0.1:", port);
      ASSIGN_OR_RETURN(std::unique_ptr<AdminClient> admin,
                       AdminClient::Connect(address, project.Transport(project.admin())));
      return std::unique_ptr<LocalCoordinator>(
          new LocalCoordinator(address, std::move(process), std::move(admin)));
    }
    if (!process->Running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::InternalError(
      absl::StrCat("the coordinator did not start; its log:\n", process->LogTail()));
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartSite(const LocalProject& project,
                                                        const std::string& coordinator_address,
                                                        const SiteOptions& options) {
  ASSIGN_OR_RETURN(std::string binary,
                   FindBinary(options.attack.empty() ? "fedmi-client" : "fedmi-sim-site"));
  std::vector<std::string> argv = {binary, "--coordinator", coordinator_address, "--site",
                                   options.name};
  if (!options.attack.empty()) argv.insert(argv.end(), {"--attack", options.attack});
  auto add_flag = [&argv](const char* flag, const std::string& value) {
    argv.push_back(flag);
    argv.push_back(value);
  };
  if (options.threads > 0) add_flag("--threads", std::to_string(options.threads));
  if (options.give_up_after_s > 0) {
    add_flag("--give-up-after", std::to_string(options.give_up_after_s));
  }
  if (options.heartbeat_s > 0) add_flag("--heartbeat", std::to_string(options.heartbeat_s));
  for (auto& flag : project.TransportFlags(options.name)) argv.push_back(std::move(flag));
  if (!options.data.empty()) add_flag("--data", options.data);
  if (!options.policy.empty()) add_flag("--policy", options.policy);
  argv.insert(argv.end(), options.extra_flags.begin(), options.extra_flags.end());
  return ChildProcess::Spawn(argv, options.log_path, options.env);
}

absl::Status WaitForSites(AdminClient& admin, const std::vector<ChildProcess*>& sites, int count,
                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (ChildProcess* site : sites) {
      if (!site->Running()) {
        return absl::InternalError(absl::StrCat("site process exited; its log (", site->log_path(),
                                                "):\n", site->LogTail()));
      }
    }
    if (admin.WaitForSites(count, absl::Seconds(1)).ok()) return absl::OkStatus();
  }
  return absl::DeadlineExceededError(absl::StrCat(count, " sites did not connect in time"));
}

absl::StatusOr<v1::RunStatus> WatchRunToEnd(
    AdminClient& admin, int64_t run_id, const std::function<void(const v1::RoundStatus&)>& on_round,
    const std::function<void(const v1::RunStatus&)>& on_update) {
  v1::RunStatus last;
  int32_t reported = 0;
  RETURN_IF_ERROR(admin.WatchRun(run_id, [&](const v1::RunStatus& update) {
    last = update;
    for (const auto& round : update.rounds()) {
      if (!on_round) break;
      if (ParseRoundState(round.state()) == RoundState::kEvaluated && round.round() > reported) {
        on_round(round);
        reported = round.round();
      }
    }
    if (on_update) on_update(update);
    return true;
  }));
  return last;
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

absl::StatusOr<std::string> MakeWorkDir(const std::string& requested, const char* prefix) {
  if (!requested.empty()) {
    mkdir(requested.c_str(), 0700);
    return requested;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp ? tmp : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError("cannot create a working directory in /tmp");
  }
  return pattern;
}

absl::StatusOr<std::unique_ptr<LocalFederation>> LocalFederation::Start(
    const std::string& work_dir, bool insecure, std::vector<std::string> coordinator_flags) {
  mkdir((work_dir + "/logs").c_str(), 0700);
  LocalProject project = LocalProject::Insecure();
  if (!insecure) {
    ASSIGN_OR_RETURN(project, LocalProject::Create(work_dir + "/pki", "fedmi-sim", "sim-admin"));
  }
  CoordinatorOptions options;
  options.db_path = work_dir + "/coordinator/state.db";
  options.port_file = work_dir + "/coordinator.port";
  options.log_path = work_dir + "/logs/coordinator.log";
  options.extra_flags = std::move(coordinator_flags);
  ASSIGN_OR_RETURN(std::unique_ptr<LocalCoordinator> coordinator,
                   LocalCoordinator::Start(project, options));
  return std::unique_ptr<LocalFederation>(
      new LocalFederation(work_dir, std::move(project), std::move(coordinator)));
}

LocalFederation::~LocalFederation() {
  for (auto& site : sites_) site->Stop();
  coordinator_->process().Stop();
}

absl::StatusOr<int64_t> LocalFederation::SitePeakRssBytes() const {
  int64_t peak = -1;
  for (const auto& site : sites_) {
    absl::StatusOr<int64_t> rss = site->PeakRssBytes();
    if (rss.ok()) peak = std::max(peak, *rss);
  }
  if (peak < 0) return absl::NotFoundError("no site process is running");
  return peak;
}

absl::Status LocalFederation::AddSite(SiteOptions options) {
  RETURN_IF_ERROR(project_.Add(options.name, PartyRole::kSite));
  options.log_path = absl::StrCat(work_dir_, "/logs/", options.name, ".log");
  ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> site,
                   StartSite(project_, coordinator_->address(), options));
  sites_.push_back(std::move(site));
  site_names_.push_back(options.name);
  return absl::OkStatus();
}

absl::Status LocalFederation::WaitForSites(absl::Duration timeout) {
  std::vector<ChildProcess*> sites;
  for (auto& site : sites_) sites.push_back(site.get());
  absl::Status status = cli::WaitForSites(admin(), sites, static_cast<int>(sites.size()), timeout);
  if (absl::IsDeadlineExceeded(status)) {
    return absl::DeadlineExceededError(
        absl::StrCat("sites did not connect in time; see ", work_dir_, "/logs"));
  }
  return status;
}

absl::StatusOr<AuditCheck> LocalFederation::ExportAndVerifyAudit(const std::string& export_path) {
  if (project_.insecure()) {
    return absl::FailedPreconditionError("no signed audit log with --insecure");
  }
  ASSIGN_OR_RETURN(audit::ExportedLog log, admin().FetchAuditLog());
  RETURN_IF_ERROR(audit::WriteExport(export_path, log));
  ASSIGN_OR_RETURN(std::string ca_pem,
                   ReadFileToString(project_.KitFile(project_.admin(), "ca.pem")));
  ASSIGN_OR_RETURN(audit::VerifyReport report,
                   audit::VerifyLog(log.entries, log.head, log.signer_certificate_pem, ca_pem));
  AuditCheck check;
  check.entries = report.entries;
  for (const auto& name : site_names_) {
    ASSIGN_OR_RETURN(std::vector<v1::UploadReceipt> receipts,
                     audit::ReadReceiptsDir(project_.KitFile(name, "receipts")));
    RETURN_IF_ERROR(audit::VerifyReceipts(receipts, log.entries, log.signer_certificate_pem));
    check.receipts += static_cast<int64_t>(receipts.size());
  }
  auto signer = ParseCertificatePem(log.signer_certificate_pem);
  if (signer.ok()) check.signer = signer->common_name;
  return check;
}

}  // namespace fedmi::cli
