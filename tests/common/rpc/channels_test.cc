// The TLS floor: which identities a party may present, and what happens to
// the TLS 1.2 cipher list gRPC reads (tests/integration/security_test.cc
// shows the handshake itself refusing TLS 1.2).
#include "common/rpc/channels.h"

#include <cstdlib>
#include <fstream>

#include "common/provision/project_ca.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

constexpr char kVariable[] = "GRPC_SSL_CIPHER_SUITES";

class ChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(scratch_.Join("project"), "stmarys"));
    Write("ca.pem", ca_->ca_cert_pem());
    unsetenv(kVariable);
  }
  void TearDown() override { unsetenv(kVariable); }

  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(scratch_.Join(name)) << text;
    return scratch_.Join(name);
  }
  // A site's kit from the project CA: an ECDSA P-256 key.
  TransportOptions SiteKit() {
    auto party = ca_->Issue("site-1", PartyRole::kSite, IssueOptions());
    EXPECT_TRUE(party.ok()) << party.status();
    TransportOptions options;
    options.cert_file = Write("site-cert.pem", party->cert_pem);
    options.key_file = Write("site-key.pem", party->key_pem);
    options.ca_file = scratch_.Join("ca.pem");
    return options;
  }

  ScratchDir scratch_;
  std::unique_ptr<ProjectCa> ca_;
};

TEST_F(ChannelsTest, WithoutAnOperatorChoiceOnlyTls13CanBeNegotiated) {
  EXPECT_EQ(ApplyTlsFloor(), TlsFloor::kTls13Only);
  ASSERT_NE(std::getenv(kVariable), nullptr);
  // One suite, and it needs an RSA certificate.
  EXPECT_STREQ(std::getenv(kVariable), "ECDHE-RSA-AES128-GCM-SHA256");
  ASSERT_OK_AND_ASSIGN(auto credentials, MakeServerCredentials(SiteKit()));
  EXPECT_NE(credentials, nullptr);
  EXPECT_EQ(ApplyTlsFloor(), TlsFloor::kTls13Only) << "the floor is idempotent";
}

TEST_F(ChannelsTest, AnOperatorsCipherListIsKeptAndReported) {
  setenv(kVariable, "ECDHE-ECDSA-AES256-GCM-SHA384", 1);
  EXPECT_EQ(ApplyTlsFloor(), TlsFloor::kOperatorCipherSuites);
  ASSERT_OK_AND_ASSIGN(auto channel, MakeChannel("127.0.0.1:1", SiteKit()));
  EXPECT_NE(channel, nullptr);
  EXPECT_STREQ(std::getenv(kVariable), "ECDHE-ECDSA-AES256-GCM-SHA384");
}

// With an RSA certificate the RSA-only TLS 1.2 suite would complete, so
// such an identity is refused before any handshake, naming the file.
TEST_F(ChannelsTest, AnRsaIdentityIsRefusedBecauseItWouldReopenTls12) {
  if (std::system("command -v openssl > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the openssl command is not installed";
  }
  const std::string key = scratch_.Join("rsa-key.pem");
  const std::string cert = scratch_.Join("rsa-cert.pem");
  ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
                         "'/O=stmarys/OU=site/CN=site-1' -keyout " +
                         key + " -out " + cert + " > /dev/null 2>&1")
                            .c_str()),
            0);
  TransportOptions options = SiteKit();
  options.cert_file = cert;
  options.key_file = key;
  EXPECT_THAT(
      MakeServerCredentials(options),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               ::testing::AllOf(HasSubstr(cert), HasSubstr("RSA key"), HasSubstr("TLS 1.2"))));
  EXPECT_THAT(MakeChannel("127.0.0.1:1", options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("RSA key")));
}

TEST_F(ChannelsTest, MissingKitFilesAndPlaintextAreExplicit) {
  EXPECT_THAT(MakeChannel("127.0.0.1:1", TransportOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--insecure")));
  TransportOptions insecure;
  insecure.insecure = true;
  EXPECT_THAT(MakeChannel("127.0.0.1:1", insecure), IsOk());
  EXPECT_THAT(MakeChannel("no-port", insecure),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HOST:PORT")));
}

}  // namespace
}  // namespace fedmi
