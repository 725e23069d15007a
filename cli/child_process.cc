#include "cli/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace fedmi::cli {

namespace {

// This process's environment with `overrides` (NAME=value) put in place of
// variables of the same name. Built before fork: the child may only exec.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> entries;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const absl::string_view current(*entry);
    const absl::string_view name = current.substr(0, current.find('=') + 1);
    bool replaced = false;
    for (const auto& override_entry : overrides) {
      replaced |= absl::StartsWith(override_entry, name);
    }
    if (!replaced) entries.emplace_back(current);
  }
  entries.insert(entries.end(), overrides.begin(), overrides.end());
  return entries;
}

std::vector<char*> NullTerminated(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (const auto& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::string& log_path,
    const std::vector<std::string>& env) {
  const std::vector<std::string> environment = ChildEnvironment(env);
  std::vector<char*> args = NullTerminated(argv);
  std::vector<char*> envp = NullTerminated(environment);
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("cannot create log ", log_path));
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) Stop(absl::Seconds(3));
}

bool ChildProcess::Running() {
  if (reaped_) return false;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    reaped_ = true;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return false;
  }
  return true;
}

int ChildProcess::Stop(absl::Duration grace) {
  if (!Running()) return exit_status_;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (absl::Now() < deadline) {
    if (!Running()) return exit_status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return exit_status_;
}

void ChildProcess::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  exit_status_ = -SIGKILL;
}

absl::StatusOr<int64_t> ChildProcess::PeakRssBytes() const {
  std::ifstream status(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib * 1024;
  }
  return absl::NotFoundError(absl::StrCat("no VmHWM for process ", pid_));
}

absl::StatusOr<double> ChildProcess::CpuSeconds() const {
  std::ifstream stat(absl::StrCat("/proc/", pid_, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return absl::NotFoundError("no /proc stat");
  std::vector<std::string> fields = absl::StrSplit(text.substr(paren + 2), ' ');
  // After "pid (comm) ", utime and stime are fields 14 and 15 of stat(5).
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::NotFoundError("unreadable /proc stat");
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

std::string ChildProcess::LogTail(int lines) const {
  std::ifstream log(log_path_);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(log, line)) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) absl::StrAppend(&out, "  | ", l, "\n");
  return out;
}

absl::StatusOr<std::string> FindBinary(const std::string& name) {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("FEDMI_BIN_DIR")) {
    candidates.push_back(absl::StrCat(dir, "/", name));
  }
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length > 0) {
    std::string exe(self, length);
    std::string dir = exe.substr(0, exe.rfind('/'));
    candidates.push_back(absl::StrCat(dir, "/", name));
    candidates.push_back(absl::StrCat(dir, "/../coordinator/", name));
    candidates.push_back(absl::StrCat(dir, "/../client/", name));
  }
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      candidates.push_back(absl::StrCat(dir, "/", name));
    }
  }
  for (const auto& candidate : candidates) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("cannot find the ", name,
                                          " binary next to fedmi, in the build tree or on "
                                          "PATH; set FEDMI_BIN_DIR"));
}

}  // namespace fedmi::cli
