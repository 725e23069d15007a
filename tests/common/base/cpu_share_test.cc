#include "common/base/cpu_share.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace fedmi {
namespace {

TEST(CpuShareTest, CpuMaxGivesTheQuotaInCpusRoundedUp) {
  EXPECT_EQ(CpusAllowedByCpuMax("200000 100000\n"), 2);
  EXPECT_EQ(CpusAllowedByCpuMax("150000 100000"), 2);  // 1.5 CPUs: two threads can use it
  EXPECT_EQ(CpusAllowedByCpuMax("50000 100000"), 1);
  EXPECT_EQ(CpusAllowedByCpuMax("max 100000\n"), 0);
  EXPECT_EQ(CpusAllowedByCpuMax(""), 0);  // no cgroup v2, or not readable
  EXPECT_EQ(CpusAllowedByCpuMax("0 100000"), 0);
  EXPECT_EQ(CpusAllowedByCpuMax("100000"), 0);
  EXPECT_EQ(CpusAllowedByCpuMax("a b"), 0);
}

TEST(CpuShareTest, CgroupPathIsTheV2Line) {
  EXPECT_EQ(CgroupV2Path("0::/kubepods/pod1/c2\n"), "/kubepods/pod1/c2");
  EXPECT_EQ(CgroupV2Path("12:cpu,cpuacct:/x\n0::/\n"), "/");
  EXPECT_EQ(CgroupV2Path("12:cpu,cpuacct:/x\n"), "");
  EXPECT_EQ(CgroupV2Path(""), "");
}

TEST(CpuShareTest, TheTightestQuotaUpTheTreeHolds) {
  std::map<std::string, std::string> cpu_max = {{"", ""},  // the root has none
                                                {"/kubepods", "max 100000"},
                                                {"/kubepods/pod1", "200000 100000\n"},
                                                {"/kubepods/pod1/c2", "400000 100000\n"}};
  auto read = [&](const std::string& path) { return cpu_max[path]; };
  EXPECT_EQ(QuotaCpusUpTheTree("/kubepods/pod1/c2", read), 2);  // the pod's, above the container's
  EXPECT_EQ(QuotaCpusUpTheTree("/kubepods", read), 0);
  EXPECT_EQ(QuotaCpusUpTheTree("", read), 0);
  cpu_max[""] = "100000 100000";  // in a container's own cgroup namespace
  EXPECT_EQ(QuotaCpusUpTheTree("/", read), 1);
  EXPECT_EQ(QuotaCpusUpTheTree("/kubepods/pod1/c2", read), 1);
  std::vector<std::string> asked;
  QuotaCpusUpTheTree("/a/b", [&](const std::string& path) {
    asked.push_back(path);
    return std::string();
  });
  EXPECT_EQ(asked, (std::vector<std::string>{"/a/b", "/a", ""}));
}

TEST(CpuShareTest, CpuListsParse) {
  EXPECT_EQ(ParseCpuList("0-3,8\n"), (std::vector<int>{0, 1, 2, 3, 8}));
  EXPECT_EQ(ParseCpuList("5"), (std::vector<int>{5}));
  EXPECT_EQ(ParseCpuList(""), (std::vector<int>{}));
  EXPECT_EQ(ParseCpuList("x,2,3-1,4-5"), (std::vector<int>{2, 4, 5}));
}

TEST(CpuShareTest, OnlyRunningDaemonsOnTheSameCpusCompete) {
  const std::vector<int> mine = {0, 1};
  EXPECT_TRUE(
      CompetesForCpus("Name:\tfedmi-client\nState:\tS (sleeping)\n"
                      "Cpus_allowed_list:\t0-3\n",
                      mine));
  EXPECT_FALSE(CompetesForCpus("State:\tR (running)\nCpus_allowed_list:\t2-3\n", mine));
  EXPECT_FALSE(CompetesForCpus("State:\tZ (zombie)\nCpus_allowed_list:\t0-1\n", mine));
  EXPECT_FALSE(CompetesForCpus("State:\tT (stopped)\nCpus_allowed_list:\t0-1\n", mine));
  EXPECT_TRUE(CompetesForCpus("State:\tR (running)\n", mine));  // no list: assume it does
  EXPECT_TRUE(CompetesForCpus("", mine));
}

TEST(CpuShareTest, SiteDaemonsAreKnownByName) {
  EXPECT_TRUE(IsSiteDaemonName("fedmi-client\n"));
  EXPECT_TRUE(IsSiteDaemonName("fedmi-sim-site\n"));
  EXPECT_FALSE(IsSiteDaemonName("fedmi-coordinator\n"));
  EXPECT_FALSE(IsSiteDaemonName("fedmi\n"));
  EXPECT_FALSE(IsSiteDaemonName(""));
}

TEST(CpuShareTest, CpusAreSharedAmongTheSitesAndCappedByTheQuota) {
  CpuShare share = ShareOf(/*affinity_cpus=*/16, /*quota_cpus=*/0, /*daemons=*/1);
  EXPECT_EQ(share.cpus, 16);
  EXPECT_EQ(share.threads, 16);
  share = ShareOf(16, 4, 1);  // a container limited to 4 CPUs on a 16-core node
  EXPECT_EQ(share.cpus, 4);
  EXPECT_EQ(share.threads, 4);
  share = ShareOf(2, 0, 3);  // three sites on two cores
  EXPECT_EQ(share.daemons, 3);
  EXPECT_EQ(share.threads, 1);
  share = ShareOf(8, 0, 3);
  EXPECT_EQ(share.threads, 2);
  share = ShareOf(0, 0, 0);  // nothing readable: one thread, this site alone
  EXPECT_EQ(share.cpus, 1);
  EXPECT_EQ(share.daemons, 1);
  EXPECT_EQ(share.threads, 1);
}

TEST(CpuShareTest, MeasuredShareIsWithinWhatThisMachineHas) {
  const CpuShare share = MeasureCpuShare();
  EXPECT_EQ(share.cpus, AllowedCpus());
  EXPECT_GE(share.daemons, 1);  // this test is no site daemon, but counts as one
  EXPECT_EQ(share.threads, std::max(1, share.cpus / share.daemons));
}

}  // namespace
}  // namespace fedmi
