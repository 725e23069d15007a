#include "common/provision/kits.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/provision/scratch_project.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class KitsTest : public ScratchProjectTest {};

TEST(ProjectWithoutCaTest, OpenWithoutCaIsNotFound) {
  ScratchDir dir;
  EXPECT_THAT(ProjectCa::Open(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("fedmi provision init")));
  EXPECT_THAT(ListIssued(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no project CA")));
}

TEST_F(KitsTest, AddPartyWritesKitAndIndex) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site,
                       AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}));
  const std::string kit = dir_.Join("kits/site-1");
  EXPECT_EQ(FileMode(kit + "/key.pem"), 0600u);
  EXPECT_EQ(ReadOrDie(kit + "/key.pem"), site.key_pem);
  EXPECT_EQ(ReadOrDie(kit + "/cert.pem"), site.cert_pem);
  EXPECT_EQ(ReadOrDie(kit + "/ca.pem"), ca_->ca_cert_pem());
  EXPECT_THAT(VerifyIssuedBy(ReadOrDie(kit + "/cert.pem"), ReadOrDie(kit + "/ca.pem"), absl::Now()),
              IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records[0].name, "site-1");
  EXPECT_EQ(records[0].role, PartyRole::kSite);
  EXPECT_EQ(records[0].serial_hex, site.info.serial_hex);
  EXPECT_EQ(records[0].sha256_fingerprint, site.info.sha256_fingerprint);
  EXPECT_EQ(records[0].not_after, site.info.not_after);
  EXPECT_EQ(records[0].kit, "kits/site-1");
}

TEST_F(KitsTest, AddingANameTwiceIsRefusedAndLeavesTheKitAlone) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site,
                       AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}));
  const std::string kit = dir_.Join("kits/site-1");
  const std::string key = ReadOrDie(kit + "/key.pem");
  const std::string cert = ReadOrDie(kit + "/cert.pem");
  const std::string config = ReadOrDie(kit + "/client.toml");
  const std::string ca_key = ReadOrDie(dir_.Join("ca/ca.key"));

  EXPECT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       AllOf(HasSubstr("site 'site-1' is already provisioned (serial " +
                                       site.info.serial_hex),
                             HasSubstr("fedmi provision renew site-1"))));
  // A different role does not get around it either.
  EXPECT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kAdmin, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("site 'site-1'")));
  EXPECT_EQ(ReadOrDie(kit + "/key.pem"), key);
  EXPECT_EQ(ReadOrDie(kit + "/cert.pem"), cert);
  EXPECT_EQ(ReadOrDie(kit + "/client.toml"), config);
  EXPECT_EQ(ReadOrDie(dir_.Join("ca/ca.key")), ca_key);
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  EXPECT_THAT(records, SizeIs(1));
}

TEST_F(KitsTest, AddPartyRefusesAStrayKitFolder) {
  std::filesystem::create_directories(dir_.Join("kits/site-9"));
  EXPECT_THAT(AddParty(dir_.path(), "site-9", PartyRole::kSite, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("not in issued.json")));
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  EXPECT_THAT(records, IsEmpty());
}

TEST_F(KitsTest, SiteKitBeforeAnyCoordinatorHasAPlaceholderAddress) {
  ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}), IsOk());
  const std::string config = ReadOrDie(dir_.Join("kits/site-1/client.toml"));
  EXPECT_THAT(config, HasSubstr("coordinator = \"HOST:7000\""));
  EXPECT_THAT(config, HasSubstr("replace HOST"));
  EXPECT_THAT(ReadOrDie(dir_.Join("kits/site-1/policy.toml")),
              HasSubstr("coordinator_fingerprint = \"\""));
}

TEST_F(KitsTest, KitConfigsNameTheCoordinatorAndRelativeFiles) {
  KitSettings settings;
  settings.coordinator_host = "coord.example.org";
  settings.coordinator_port = 7443;
  IssueOptions coordinator_options;
  coordinator_options.ip_addresses = {"10.0.0.5"};
  ASSERT_OK_AND_ASSIGN(
      IssuedParty coordinator,
      AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, coordinator_options, settings));
  EXPECT_THAT(coordinator.info.dns_names, ElementsAre("coord.example.org", "localhost"));
  EXPECT_THAT(coordinator.info.ip_addresses, ElementsAre("10.0.0.5", "127.0.0.1"));

  const std::string coordinator_config = ReadOrDie(dir_.Join("kits/coordinator/coordinator.toml"));
  EXPECT_THAT(coordinator_config, HasSubstr("listen = \"0.0.0.0:7443\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("db = \"state/coordinator.db\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("cert = \"cert.pem\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("key = \"key.pem\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("ca = \"ca.pem\"\n"));
  EXPECT_THAT(coordinator_config, HasSubstr("# crl = \"crl.pem\"\n"));
  EXPECT_EQ(FileMode(dir_.Join("kits/coordinator/key.pem")), 0600u);

  ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}), IsOk());
  const std::string client = ReadOrDie(dir_.Join("kits/site-1/client.toml"));
  EXPECT_THAT(client, HasSubstr("coordinator = \"coord.example.org:7443\"\n"));
  EXPECT_THAT(client, HasSubstr("site = \"site-1\"\n"));
  EXPECT_THAT(client, HasSubstr("cert = \"cert.pem\"\n"));
  EXPECT_THAT(client, HasSubstr("key = \"key.pem\"\n"));
  EXPECT_THAT(client, HasSubstr("ca = \"ca.pem\"\n"));
  EXPECT_THAT(client, HasSubstr("policy = \"policy.toml\"\n"));
  EXPECT_THAT(client, HasSubstr("# data = \"/path/to/images\"\n"));
  EXPECT_THAT(client, HasSubstr("# crl = \"crl.pem\"\n"));
  const std::string policy = ReadOrDie(dir_.Join("kits/site-1/policy.toml"));
  EXPECT_THAT(policy, HasSubstr("allowed_models = [\"cnn\", \"cnn-gn\", \"resnet18\"]\n"));
  EXPECT_THAT(policy, HasSubstr("max_local_epochs = 10\n"));
  EXPECT_THAT(policy, HasSubstr("require_secure_aggregation = false\n"));
  EXPECT_THAT(policy, HasSubstr("require_differential_privacy = false\n"));
  EXPECT_THAT(policy, HasSubstr("coordinator_fingerprint = \"" +
                                coordinator.info.sha256_fingerprint + "\"\n"));

  ASSERT_THAT(AddParty(dir_.path(), "alice", PartyRole::kAdmin, IssueOptions(), {}), IsOk());
  ASSERT_THAT(AddParty(dir_.path(), "bob", PartyRole::kAuditor, IssueOptions(), {}), IsOk());
  for (const char* name : {"alice", "bob"}) {
    const std::string config = ReadOrDie(dir_.Join(std::string("kits/") + name + "/fedmi.toml"));
    EXPECT_THAT(config, HasSubstr("coordinator = \"coord.example.org:7443\"\n"));
    EXPECT_THAT(config, HasSubstr("cert = \"cert.pem\"\n"));
    EXPECT_THAT(config, HasSubstr("key = \"key.pem\"\n"));
    EXPECT_THAT(config, HasSubstr("ca = \"ca.pem\"\n"));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(5));
  EXPECT_EQ(records[0].role, PartyRole::kCoordinator);
  EXPECT_EQ(records[1].role, PartyRole::kAuditSigner);
  EXPECT_EQ(records[4].name, "bob");
  EXPECT_EQ(records[4].role, PartyRole::kAuditor);

  EXPECT_THAT(
      AddParty(dir_.path(), "coordinator-2", PartyRole::kCoordinator, IssueOptions(), settings),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already has coordinator")));
}

TEST_F(KitsTest, CoordinatorNeedsAHost) {
  EXPECT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host")));
  KitSettings ipv6;
  ipv6.coordinator_host = "fd00::5";
  ASSERT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(), ipv6),
              IsOk());
  ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}), IsOk());
  EXPECT_THAT(ReadOrDie(dir_.Join("kits/site-1/client.toml")),
              HasSubstr("coordinator = \"[fd00::5]:7000\""));
}

TEST_F(KitsTest, CoordinatorKitHoldsASeparateAuditSigningKey) {
  KitSettings settings;
  settings.coordinator_host = "coord.example.org";
  IssueOptions with_ip;
  with_ip.ip_addresses = {"10.0.0.5"};
  ASSERT_OK_AND_ASSIGN(
      IssuedParty coordinator,
      AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, with_ip, settings));
  const std::string kit = dir_.Join("kits/coordinator");
  EXPECT_EQ(FileMode(kit + "/audit-key.pem"), 0600u);
  EXPECT_NE(ReadOrDie(kit + "/audit-key.pem"), coordinator.key_pem);
  const std::string audit_cert = ReadOrDie(kit + "/audit-cert.pem");
  EXPECT_THAT(VerifyPartyCertificate(audit_cert, ca_->ca_cert_pem(), "coordinator-audit",
                                     PartyRole::kAuditSigner, absl::Now()),
              IsOk());
  ASSERT_OK_AND_ASSIGN(CertificateInfo audit_info, ParseCertificatePem(audit_cert));
  EXPECT_THAT(audit_info.dns_names, IsEmpty()) << "no TLS server names on a signing key";
  EXPECT_THAT(audit_info.ip_addresses, IsEmpty());
  const std::string config = ReadOrDie(kit + "/coordinator.toml");
  EXPECT_THAT(config, HasSubstr("audit-key = \"audit-key.pem\"\n"));
  EXPECT_THAT(config, HasSubstr("audit-cert = \"audit-cert.pem\"\n"));

  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(2));
  EXPECT_EQ(records[1].name, "coordinator-audit");
  EXPECT_EQ(records[1].role, PartyRole::kAuditSigner);
  EXPECT_EQ(records[1].kit, "kits/coordinator");

  EXPECT_THAT(AddAuditSigner(dir_.path(), "coordinator", {}),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("fedmi provision renew coordinator-audit")));
  EXPECT_THAT(AddParty(dir_.path(), "x-audit", PartyRole::kAuditSigner, {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("add-audit-signer")));
}

TEST_F(KitsTest, AddAuditSignerEquipsAnOlderCoordinatorKit) {
  KitSettings settings;
  settings.coordinator_host = "coord.example.org";
  ASSERT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, {}, settings), IsOk());
  // Make it a kit from before audit signers: no audit files, record or lines.
  const std::string kit = dir_.Join("kits/coordinator");
  std::filesystem::remove(kit + "/audit-key.pem");
  std::filesystem::remove(kit + "/audit-cert.pem");
  std::string config = ReadOrDie(kit + "/coordinator.toml");
  config.erase(config.find(AuditSignerConfigLines()));
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), kit + "/coordinator.toml", config), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records,
                       ReadIssuedIndex(*Env::Default(), dir_.path()));
  records.pop_back();
  ASSERT_THAT(WriteIssuedIndex(*Env::Default(), dir_.path(), records), IsOk());

  ASSERT_OK_AND_ASSIGN(IssuedParty signer, AddAuditSigner(dir_.path(), "coordinator", {}));
  EXPECT_EQ(signer.info.common_name, "coordinator-audit");
  EXPECT_EQ(ReadOrDie(kit + "/audit-key.pem"), signer.key_pem);
  EXPECT_EQ(FileMode(kit + "/audit-key.pem"), 0600u);
  EXPECT_EQ(ReadOrDie(kit + "/audit-cert.pem"), signer.cert_pem);
  EXPECT_EQ(ReadOrDie(kit + "/coordinator.toml"), config + AuditSignerConfigLines());
  ASSERT_OK_AND_ASSIGN(records, ListIssued(dir_.path()));
  ASSERT_THAT(records, SizeIs(2));
  EXPECT_EQ(records[1].name, "coordinator-audit");

  EXPECT_THAT(AddAuditSigner(dir_.path(), "nobody", {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no coordinator 'nobody'")));
}

// Every file under `dir` (recursively) with its bytes, to show that a failed
// AddParty changed nothing at all.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string relative = std::filesystem::relative(entry.path(), dir).string();
    if (relative == ".provision.lock") continue;
    files[relative] = entry.is_regular_file() ? ReadOrDie(entry.path().string()) : "<folder>";
  }
  return files;
}

class KitsFaultTest : public KitsTest {
 protected:
  void SetUp() override {
    KitsTest::SetUp();
    KitSettings settings;
    settings.coordinator_host = "coord.example.org";
    ASSERT_THAT(AddParty(dir_.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(),
                         settings, env_),
                IsOk());
    ASSERT_THAT(AddParty(dir_.path(), "site-1", PartyRole::kSite, IssueOptions(), {}, env_),
                IsOk());
    before_ = Snapshot(dir_.path());
  }

  // The failed call left every byte as it was, and a retry on a healthy
  // disk provisions the party.
  void ExpectUnchangedThenRetrySucceeds(const std::string& name, PartyRole role,
                                        const KitSettings& settings = {}) {
    EXPECT_EQ(Snapshot(dir_.path()), before_);
    env_.Heal();
    ASSERT_THAT(AddParty(dir_.path(), name, role, IssueOptions(), settings, env_), IsOk());
    ASSERT_OK_AND_ASSIGN(std::vector<IssuedRecord> records, ListIssued(dir_.path(), env_));
    ASSERT_THAT(records, SizeIs(4));  // coordinator, its audit signer, site-1, `name`
    EXPECT_EQ(records[3].name, name);
    EXPECT_TRUE(std::filesystem::exists(dir_.Join("kits/" + name + "/key.pem")));
  }

  FaultInjectionEnv env_;
  std::map<std::string, std::string> before_;
};

TEST_F(KitsFaultTest, ADiskThatFillsMidKitLeavesNoKitAndNoRecord) {
  // Enough for key.pem, not for cert.pem.
  env_.FailWritesAfter(300);
  EXPECT_THAT(AddParty(dir_.path(), "site-2", PartyRole::kSite, IssueOptions(), {}, env_),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr(dir_.Join("kits/site-2")), HasSubstr("No space left"))));
  ExpectUnchangedThenRetrySucceeds("site-2", PartyRole::kSite);
}

TEST_F(KitsFaultTest, AFailedPublishOfTheKitFolderLeavesNothing) {
  env_.FailRenames(absl::InternalError("Input/output error"));
  EXPECT_THAT(AddParty(dir_.path(), "site-2", PartyRole::kSite, IssueOptions(), {}, env_),
              StatusIs(absl::StatusCode::kInternal, HasSubstr(dir_.Join("kits/site-2"))));
  ExpectUnchangedThenRetrySucceeds("site-2", PartyRole::kSite);
}

TEST_F(KitsFaultTest, AFailedWriteOfTheIssuedIndexRemovesTheNewKit) {
  const std::string index = dir_.Join("issued.json");
  env_.FailCommitsTo(index, absl::ResourceExhaustedError("No space left on device"));
  EXPECT_THAT(AddParty(dir_.path(), "alice", PartyRole::kAdmin, IssueOptions(), {}, env_),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(index)));
  EXPECT_FALSE(std::filesystem::exists(dir_.Join("kits/alice")));
  ExpectUnchangedThenRetrySucceeds("alice", PartyRole::kAdmin);
}

TEST(KitsFaultRecordTest, AFailedWriteOfProjectJsonPutsTheIndexBack) {
  ScratchDir dir;
  FaultInjectionEnv env;
  ASSERT_THAT(ProjectCa::Create(dir.path(), "stmarys", 3650, env), IsOk());
  ASSERT_THAT(AddParty(dir.path(), "site-1", PartyRole::kSite, IssueOptions(), {}, env), IsOk());
  const std::string index_before = ReadOrDie(dir.Join("issued.json"));

  KitSettings settings;
  settings.coordinator_host = "coord.example.org";
  env.FailCommitsTo(dir.Join("project.json"), absl::InternalError("Input/output error"));
  EXPECT_THAT(
      AddParty(dir.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(), settings, env),
      StatusIs(absl::StatusCode::kInternal, HasSubstr(dir.Join("project.json"))));
  EXPECT_EQ(ReadOrDie(dir.Join("issued.json")), index_before);
  EXPECT_FALSE(std::filesystem::exists(dir.Join("kits/coordinator")));
  EXPECT_FALSE(std::filesystem::exists(dir.Join("project.json")));

  env.Heal();
  EXPECT_THAT(
      AddParty(dir.path(), "coordinator", PartyRole::kCoordinator, IssueOptions(), settings, env),
      IsOk());
}

}  // namespace
}  // namespace fedmi
