#include "common/base/cpu_share.h"

#include <dirent.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <climits>
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

std::vector<int> AffinityCpuList() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) {
    const int count = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int cpu = 0; cpu < count; ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

int QuotaCpus() {
  return QuotaCpusUpTheTree(
      CgroupV2Path(ReadSmallFile("/proc/self/cgroup")),
      [](const std::string& path) { return ReadSmallFile("/sys/fs/cgroup" + path + "/cpu.max"); });
}

int CountSiteDaemons(const std::vector<int>& my_cpus) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 1;
  int count = 0;
  while (const dirent* entry = readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(entry->d_name[0]))) continue;
    const std::string dir = std::string("/proc/") + entry->d_name;
    if (IsSiteDaemonName(ReadSmallFile(dir + "/comm")) &&
        CompetesForCpus(ReadSmallFile(dir + "/status"), my_cpus)) {
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
  const int64_t cpus = quota / period + (quota % period != 0 ? 1 : 0);
  return static_cast<int>(std::clamp<int64_t>(cpus, 1, INT_MAX));
}

std::string CgroupV2Path(absl::string_view proc_self_cgroup) {
  for (absl::string_view line : absl::StrSplit(proc_self_cgroup, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return "";
}

int QuotaCpusUpTheTree(std::string path,
                       const std::function<std::string(const std::string&)>& read_cpu_max) {
  // A limit may sit on any ancestor (a pod's cgroup above its container's);
  // the tightest one holds. Inside a container with its own cgroup namespace
  // the path is "/" and only the top of /sys/fs/cgroup is visible.
  if (path == "/") path.clear();
  int quota_cpus = 0;
  while (true) {
    const int cpus = CpusAllowedByCpuMax(read_cpu_max(path));
    if (cpus > 0) quota_cpus = quota_cpus == 0 ? cpus : std::min(quota_cpus, cpus);
    const size_t slash = path.rfind('/');
    if (path.empty() || slash == std::string::npos) break;
    path.resize(slash);
  }
  return quota_cpus;
}

std::vector<int> ParseCpuList(absl::string_view list) {
  std::vector<int> cpus;
  for (absl::string_view part :
       absl::StrSplit(absl::StripAsciiWhitespace(list), ',', absl::SkipEmpty())) {
    const std::vector<absl::string_view> ends = absl::StrSplit(part, absl::MaxSplits('-', 1));
    int first = 0;
    int last = 0;
    if (!absl::SimpleAtoi(ends[0], &first)) continue;
    last = first;
    if (ends.size() == 2 && !absl::SimpleAtoi(ends[1], &last)) continue;
    if (first < 0 || last < first || last >= CPU_SETSIZE) continue;
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

bool IsSiteDaemonName(absl::string_view comm) {
  comm = absl::StripTrailingAsciiWhitespace(comm);
  return comm == "fedmi-client" || comm == "fedmi-sim-site";
}

bool CompetesForCpus(absl::string_view status, const std::vector<int>& my_cpus) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "State:")) {
      line = absl::StripLeadingAsciiWhitespace(line);
      // Zombie, stopped, traced or dead: not computing.
      if (!line.empty() && absl::string_view("ZTtXx").find(line[0]) != absl::string_view::npos) {
        return false;
      }
    } else if (absl::ConsumePrefix(&line, "Cpus_allowed_list:")) {
      const std::vector<int> theirs = ParseCpuList(line);
      return std::any_of(theirs.begin(), theirs.end(), [&](int cpu) {
        return std::find(my_cpus.begin(), my_cpus.end(), cpu) != my_cpus.end();
      });
    }
  }
  return true;
}

CpuShare ShareOf(int affinity_cpus, int quota_cpus, int daemons) {
  CpuShare share;
  share.cpus = std::max(1, affinity_cpus);
  if (quota_cpus > 0) share.cpus = std::min(share.cpus, quota_cpus);
  share.daemons = std::max(1, daemons);
  share.threads = std::max(1, share.cpus / share.daemons);
  return share;
}

int AllowedCpus() {
  return ShareOf(static_cast<int>(AffinityCpuList().size()), QuotaCpus(), 1).cpus;
}

CpuShare MeasureCpuShare() {
  const std::vector<int> cpus = AffinityCpuList();
  return ShareOf(static_cast<int>(cpus.size()), QuotaCpus(), CountSiteDaemons(cpus));
}

}  // namespace fedmi
