#include "common/base/cpu_share.h"

#include <gtest/gtest.h>

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
  EXPECT_GE(share.cpus, 1);
  EXPECT_GE(share.daemons, 1);
  EXPECT_GE(share.threads, 1);
  EXPECT_LE(share.threads, share.cpus);
}

}  // namespace
}  // namespace fedmi
