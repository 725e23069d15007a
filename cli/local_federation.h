// A federation of real processes on this machine: a throwaway project (CA and
// kits), a fedmi-coordinator on a loopback port and fedmi-client sites, all
// started as child processes. `fedmi sim`, `fedmi bench round` and the
// integration tests start and stop their federations through this one code,
// so what they exercise is what a deployment runs.
//
// Torch-free: it spawns processes and talks to the coordinator through
// AdminClient only. Not thread-safe. Destroying a process handle stops the
// process (see ChildProcess). Every failure is a Status naming the cause;
// a process that fails to start is reported with the tail of its log.
#ifndef FEDMI_CLI_LOCAL_FEDERATION_H_
#define FEDMI_CLI_LOCAL_FEDERATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/child_process.h"
#include "common/crypto/identity.h"
#include "common/provision/kits.h"
#include "common/provision/project_ca.h"
#include "common/rpc/channels.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

// Where the parties of a local federation get their identities: a project
// directory with a CA and one kit per party, or no PKI at all (plaintext,
// --insecure). A value type: it names files, it holds no key.
class LocalProject {
 public:
  // Creates a CA named `ca_name` in `dir`, a coordinator kit for 127.0.0.1
  // and an administrator kit for `admin`. AlreadyExists if `dir` holds a CA.
  static absl::StatusOr<LocalProject> Create(std::string dir, const std::string& ca_name,
                                             std::string admin);
  // A project already provisioned in `dir`, whose administrator is `admin`.
  static LocalProject Open(std::string dir, std::string admin);
  // No PKI: every process runs --insecure.
  static LocalProject Insecure();

  // Issues a kit for another party (see AddParty in common/crypto/pki.h).
  absl::Status Add(const std::string& name, PartyRole role, const IssueOptions& options = {}) const;

  bool insecure() const { return dir_.empty(); }
  const std::string& dir() const { return dir_; }
  const std::string& admin() const { return admin_; }
  std::string KitFile(const std::string& party, const std::string& file) const;
  // How `party` connects: its kit's certificate, key and CA, or plaintext.
  TransportOptions Transport(const std::string& party) const;
  // The same as command-line flags of the fedmi binaries.
  std::vector<std::string> TransportFlags(const std::string& party) const;
  const char* transport_name() const {
    return insecure() ? "plaintext (--insecure)" : "mutual TLS";
  }

 private:
  LocalProject(std::string dir, std::string admin)
      : dir_(std::move(dir)), admin_(std::move(admin)) {}
  std::string dir_;  // empty: insecure
  std::string admin_;
};

// Where a coordinator keeps its files and how it is started.
struct CoordinatorOptions {
  // A fixed port restarts a coordinator on the address its sites know.
  std::string listen = "127.0.0.1:0";
  std::string db_path;
  std::string port_file;  // removed first; the coordinator writes its port there
  std::string log_path;
  // NAME=value entries set for this process alone (e.g. crash points).
  std::vector<std::string> env;
  absl::Duration start_timeout = absl::Seconds(30);
  // More command-line flags, last (e.g. "--http", "127.0.0.1:9100").
  std::vector<std::string> extra_flags;
};

// A running fedmi-coordinator and an administrator's client connected to it.
class LocalCoordinator {
 public:
  // Starts the coordinator with `project`'s coordinator kit and waits for it
  // to write its port. Internal error with its log tail if it exits or does
  // not listen within the start timeout.
  static absl::StatusOr<std::unique_ptr<LocalCoordinator>> Start(const LocalProject& project,
                                                                 const CoordinatorOptions& options);

  const std::string& address() const { return address_; }
  AdminClient& admin() { return *admin_; }
  ChildProcess& process() { return *process_; }

 private:
  LocalCoordinator(std::string address, std::unique_ptr<ChildProcess> process,
                   std::unique_ptr<AdminClient> admin)
      : address_(std::move(address)), process_(std::move(process)), admin_(std::move(admin)) {}
  std::string address_;
  std::unique_ptr<ChildProcess> process_;
  std::unique_ptr<AdminClient> admin_;
};

// How one fedmi-client (or, attacking, fedmi-sim-site) site is started. The
// site must already hold a kit in the project (LocalProject::Add) unless the project is insecure.
struct SiteOptions {
  std::string name;
  std::string log_path;
  std::string data;    // empty: no data, the site serves the synthetic model
  std::string policy;  // empty: the client's default policy
  int threads = 0;     // LibTorch threads; 0 leaves the client's default
  int give_up_after_s = 60;
  int heartbeat_s = 0;  // 0 leaves the client's default
  std::vector<std::string> env;
  // Simulation only: a model-poisoning kind of client/sim_attack.h
  // ("sign-flip", ...). Set, the site runs fedmi-sim-site --attack <attack>
  // instead of the production fedmi-client, which has no such setting.
  std::string attack;
  // More command-line flags, last (e.g. "--http", "127.0.0.1:9101").
  std::vector<std::string> extra_flags;
};

absl::StatusOr<std::unique_ptr<ChildProcess>> StartSite(const LocalProject& project,
                                                        const std::string& coordinator_address,
                                                        const SiteOptions& options);

// Waits until `count` sites are connected, failing early (with its log) if
// one of `sites` exits; DeadlineExceeded after `timeout`.
absl::Status WaitForSites(AdminClient& admin, const std::vector<ChildProcess*>& sites, int count,
                          absl::Duration timeout);

// Follows a run to its end and returns its last status, calling `on_round`
// (if set) once for each newly evaluated round, then `on_update` (if set)
// with every status the coordinator sends.
absl::StatusOr<v1::RunStatus> WatchRunToEnd(
    AdminClient& admin, int64_t run_id,
    const std::function<void(const v1::RoundStatus&)>& on_round = nullptr,
    const std::function<void(const v1::RunStatus&)>& on_update = nullptr);

// A loopback port nothing listens on right now (the kernel's pick for port
// 0), for a listener whose port must be known before it starts; 0 when none
// can be had. Another process may take it before the listener binds it.
int FreeLoopbackPort();

// `requested`, created if needed, or a new directory <TMPDIR>/<prefix>-XXXXXX.
absl::StatusOr<std::string> MakeWorkDir(const std::string& requested, const char* prefix);

// What an auditor checks at the end of a run: the exported log verified
// against the project CA and every site's kept receipts found in it.
struct AuditCheck {
  int64_t entries = 0;
  int64_t receipts = 0;
  std::string signer;
};

// The layout `fedmi sim` and `fedmi bench` use in one work directory: the
// project in pki/ (administrator "sim-admin"), the coordinator's state in
// coordinator/, logs in logs/. Sites are issued kits as they are added.
// Stops every process on destruction.
class LocalFederation {
 public:
  // `coordinator_flags` go last on the coordinator's command line.
  static absl::StatusOr<std::unique_ptr<LocalFederation>> Start(
      const std::string& work_dir, bool insecure, std::vector<std::string> coordinator_flags = {});
  ~LocalFederation();

  // Issues `options.name` a site kit and starts it; the log goes to logs/.
  absl::Status AddSite(SiteOptions options);
  // Waits for every added site to connect.
  absl::Status WaitForSites(absl::Duration timeout);
  // Exports the audit log to `export_path`, verifies it against the project
  // CA and checks every site's receipts. FailedPrecondition when insecure.
  absl::StatusOr<AuditCheck> ExportAndVerifyAudit(const std::string& export_path);

  // The largest peak RSS of the site processes (VmHWM); NotFound when none
  // is running.
  absl::StatusOr<int64_t> SitePeakRssBytes() const;

  AdminClient& admin() { return coordinator_->admin(); }
  ChildProcess& coordinator() { return coordinator_->process(); }
  const std::string& address() const { return coordinator_->address(); }
  const LocalProject& project() const { return project_; }

 private:
  LocalFederation(std::string work_dir, LocalProject project,
                  std::unique_ptr<LocalCoordinator> coordinator)
      : work_dir_(std::move(work_dir)),
        project_(std::move(project)),
        coordinator_(std::move(coordinator)) {}
  std::string work_dir_;
  LocalProject project_;
  std::unique_ptr<LocalCoordinator> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> sites_;
  std::vector<std::string> site_names_;
};

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_LOCAL_FEDERATION_H_
