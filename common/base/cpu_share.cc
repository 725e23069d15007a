#include "common/base/cpu_share.h"

#include <dirent.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fedmi {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int CountSiteDaemons() {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 1;
  int count = 0;
  while (const dirent* entry = readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(entry->d_name[0]))) continue;
    if (IsSiteDaemonName(ReadSmallFile(std::string("/proc/") + entry->d_name + "/comm"))) {
      ++count;
    }
  }
  closedir(proc);
  // This process is one, even if /proc hides it.
  return std::max(1, count);
}

}  // namespace

int CpusAllowedByCpuMax(absl::string_view cpu_max) {
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(cpu_max), ' ', absl::SkipEmpty());
  int64_t quota = 0;
  int64_t period = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &quota) ||
      !absl::SimpleAtoi(fields[1], &period) || quota <= 0 || period <= 0) {
    return 0;  // "max": no limit
  }
  return static_cast<int>(std::max<int64_t>(1, (quota + period - 1) / period));
}

std::string CgroupV2Path(absl::string_view proc_self_cgroup) {
  for (absl::string_view line : absl::StrSplit(proc_self_cgroup, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return "";
}

bool IsSiteDaemonName(absl::string_view comm) {
  comm = absl::StripTrailingAsciiWhitespace(comm);
  return comm == "fedmi-client" || comm == "fedmi-sim-site";
}

CpuShare ShareOf(int affinity_cpus, int quota_cpus, int daemons) {
  CpuShare share;
  share.cpus = std::max(1, affinity_cpus);
  if (quota_cpus > 0) share.cpus = std::min(share.cpus, quota_cpus);
  share.daemons = std::max(1, daemons);
  share.threads = std::max(1, share.cpus / share.daemons);
  return share;
}

CpuShare MeasureCpuShare() {
  // A limit may sit on any ancestor (a pod's cgroup above its container's);
  // the tightest one holds. Inside a container with its own cgroup namespace
  // the path is "/" and only the top of /sys/fs/cgroup is visible.
  std::string path = CgroupV2Path(ReadSmallFile("/proc/self/cgroup"));
  int quota_cpus = 0;
  while (true) {
    const int cpus = CpusAllowedByCpuMax(ReadSmallFile("/sys/fs/cgroup" + path + "/cpu.max"));
    if (cpus > 0) quota_cpus = quota_cpus == 0 ? cpus : std::min(quota_cpus, cpus);
    const size_t slash = path.rfind('/');
    if (path.empty() || slash == std::string::npos) break;
    path.resize(slash);
  }
  return ShareOf(AffinityCpus(), quota_cpus, CountSiteDaemons());
}

}  // namespace fedmi
