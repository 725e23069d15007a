// Name resolution of the binaries: the system resolver unless the operator
// chose one, "localhost" without any lookup, and failed lookups explained.
// The multi-host test (scripts/multihost-test.sh) runs the binaries in a
// network namespace whose /etc/hosts lacks localhost.
#include "common/rpc/name_resolution.h"

#include <cstdlib>

#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ResolverVariableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* value = std::getenv(kDnsResolverVariable)) saved_ = value;
    unsetenv(kDnsResolverVariable);
  }
  void TearDown() override {
    if (saved_.empty()) {
      unsetenv(kDnsResolverVariable);
    } else {
      setenv(kDnsResolverVariable, saved_.c_str(), 1);
    }
  }
  std::string saved_;
};

TEST_F(ResolverVariableTest, UnsetMeansTheSystemResolver) {
  EXPECT_EQ(UseSystemResolver(), "native");
  EXPECT_STREQ(std::getenv("GRPC_DNS_RESOLVER"), "native");
  EXPECT_EQ(UseSystemResolver(), "native") << "idempotent";
}

TEST_F(ResolverVariableTest, TheOperatorsChoiceIsKept) {
  setenv("GRPC_DNS_RESOLVER", "ares", 1);
  EXPECT_EQ(UseSystemResolver(), "ares");
  EXPECT_STREQ(std::getenv("GRPC_DNS_RESOLVER"), "ares");
}

TEST(LocalhostTest, LocalhostIsLoopbackWithoutALookup) {
  EXPECT_EQ(LocalhostAsLoopback("localhost:7000"), "127.0.0.1:7000");
  EXPECT_EQ(LocalhostAsLoopback("LocalHost:0"), "127.0.0.1:0");
  EXPECT_EQ(LocalhostAsLoopback("localhost.:7000"), "127.0.0.1:7000");
}

TEST(LocalhostTest, OtherAddressesAreUnchanged) {
  for (const char* address :
       {"coord.example.org:7000", "localhost.example.org:7000", "mylocalhost:7000",
        "10.231.0.1:7000", "[::1]:7000", "127.0.0.1:7000", "0.0.0.0:7000", "localhost"}) {
    EXPECT_EQ(LocalhostAsLoopback(address), address);
  }
  EXPECT_TRUE(IsLocalhostName("LOCALHOST"));
  EXPECT_FALSE(IsLocalhostName("localhost.localdomain"));
  EXPECT_FALSE(IsLocalhostName(""));
}

TEST(ExplainResolutionFailureTest, AFailedLookupSaysWhatToCheck) {
  const std::string grpc =
      "DNS resolution failed for coord.example.org:7000: UNKNOWN: Name or service not known";
  const std::string explained = ExplainResolutionFailure(grpc);
  EXPECT_THAT(explained, StartsWith(grpc));
  EXPECT_THAT(explained, HasSubstr("getent hosts"));
  EXPECT_THAT(explained, HasSubstr("/etc/hosts"));
}

TEST(ExplainResolutionFailureTest, OtherFailuresAreUnchanged) {
  const std::string refused = "failed to connect to all addresses; last error: Connection refused";
  EXPECT_EQ(ExplainResolutionFailure(refused), refused);
}

}  // namespace
}  // namespace fedmi
