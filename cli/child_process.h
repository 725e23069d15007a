// Child processes of a local federation (cli/local_federation.h): the real
// binaries run as separate processes, with stdout and stderr sent to a log
// file. Not thread-safe. The destructor terminates a child that is still
// running.
#ifndef FEDMI_CLI_CHILD_PROCESS_H_
#define FEDMI_CLI_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fedmi::cli {

class ChildProcess {
 public:
  // Runs argv[0] (a path) with this process's environment plus `env`
  // entries (NAME=value, replacing a variable of the same name).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::string& log_path,
      const std::vector<std::string>& env = {});
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  bool Running();
  // SIGTERM, then SIGKILL after `grace`. Returns the exit status (or -signal).
  int Stop(absl::Duration grace = absl::Seconds(5));
  // SIGKILL at once, as a crash would; waits for the process to go.
  void Kill();
  // Peak resident set size (VmHWM) in bytes, while the process is alive.
  absl::StatusOr<int64_t> PeakRssBytes() const;
  // CPU seconds (user + system) used so far, while the process is alive.
  absl::StatusOr<double> CpuSeconds() const;
  // The last `lines` lines of the log, for error messages.
  std::string LogTail(int lines = 20) const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  bool reaped_ = false;
  int exit_status_ = 0;
};

// Finds a fedmi binary: $FEDMI_BIN_DIR, next to this executable, the build
// tree layout (../coordinator, ../client), then $PATH.
absl::StatusOr<std::string> FindBinary(const std::string& name);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_CHILD_PROCESS_H_
