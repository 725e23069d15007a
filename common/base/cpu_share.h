// How many threads a fedmi process computes with when it is not told: the
// CPUs it may run on, shared evenly among the fedmi sites training on the
// same CPUs.
//
// "All cores" is wrong in two common places. In a container the CPU limit
// is a cgroup quota (Kubernetes' `resources.limits.cpu`), not fewer cores:
// 64 threads under a 2-CPU quota spend their time throttled. And several
// site daemons on one host (a test bench, `fedmi sim`, a small hospital
// running two sites) each taking every core oversubscribe it, which made
// rounds uneven in a 3-site test on 2 cores (issue 17).
//
// Only cgroup v2 (the unified hierarchy, Debian's default since 11) is
// read; a v1 CPU quota is not seen. Thread-safe.
#ifndef FEDMI_COMMON_BASE_CPU_SHARE_H_
#define FEDMI_COMMON_BASE_CPU_SHARE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fedmi {

struct CpuShare {
  int cpus = 1;     // CPUs this process may use: affinity, then cgroup quota
  int daemons = 1;  // running site processes sharing those CPUs, itself included
  int threads = 1;  // cpus / daemons, at least 1
};

// The CPUs a cgroup v2 `cpu.max` allows ("QUOTA PERIOD", or "max PERIOD"
// for no limit), rounded up; 0 for no limit or text that does not parse.
int CpusAllowedByCpuMax(absl::string_view cpu_max);

// The cgroup v2 path of this process from /proc/self/cgroup's text ("0::/a/b"
// gives "/a/b"); empty when there is no v2 line.
std::string CgroupV2Path(absl::string_view proc_self_cgroup);

// The tightest quota on `path` and its ancestors, in CPUs (0: none), with
// `read_cpu_max(p)` the text of cpu.max of cgroup `p` ("" at the root).
int QuotaCpusUpTheTree(std::string path,
                       const std::function<std::string(const std::string&)>& read_cpu_max);

// "0-3,8" (a Cpus_allowed_list) as {0, 1, 2, 3, 8}; malformed parts are
// skipped.
std::vector<int> ParseCpuList(absl::string_view list);

// Whether a process's /proc/PID/comm names a fedmi site daemon.
bool IsSiteDaemonName(absl::string_view comm);

// Whether the site daemon whose /proc/PID/status is `status` competes for
// `my_cpus`: it is not a zombie or stopped, and its allowed CPUs overlap
// them (a status without the list counts as overlapping).
bool CompetesForCpus(absl::string_view status, const std::vector<int>& my_cpus);

// The share for the CPUs and the site daemons counted; `quota_cpus` (0:
// none) caps the CPUs.
CpuShare ShareOf(int affinity_cpus, int quota_cpus, int daemons);

// The CPUs this process may use: its affinity, capped by its cgroups'
// quotas.
int AllowedCpus();

// AllowedCpus() shared with the running site daemons on the same CPUs (a
// scan of /proc: a few milliseconds). What cannot be read counts as no
// limit (cgroup) or as this process alone (/proc).
CpuShare MeasureCpuShare();

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_CPU_SHARE_H_
