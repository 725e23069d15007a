// Trust end to end: mutual TLS, identities and roles from certificates,
// revocation, and site policy, against a real coordinator process. Each
// hostile call is refused with a clear error while honest parties keep
// being served.
#include <cstdio>

#include "common/tensor/synthetic_model.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

absl::Status ToStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::Status ListRunsWith(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Admin::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListRunsResponse response;
  return ToStatus(stub->ListRuns(&context, v1::ListRunsRequest(), &response));
}

absl::Status StartRunWith(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Admin::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::StartRunRequest request;
  request.mutable_spec()->set_model("synthetic");
  request.mutable_spec()->set_synthetic_params(4);
  request.mutable_spec()->set_rounds(1);
  v1::StartRunResponse response;
  return ToStatus(stub->StartRun(&context, request, &response));
}

std::string Read(const std::string& path) {
  auto text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

class SecurityTest : public ::testing::Test {
 protected:
  SecurityTest() : project_(scratch_.path()) {
    project_.Add("site-1", PartyRole::kSite);
    project_.Add("site-2", PartyRole::kSite);
    project_.Add("auditor-1", PartyRole::kAuditor);
    coordinator_ = std::make_unique<CoordinatorProcess>(scratch_.path(), &project_);
  }
  std::shared_ptr<grpc::Channel> Channel(const std::string& party) {
    return PartyChannel(coordinator_->address(), &project_, party);
  }
  // The honest administrator is still served.
  void ExpectStillServing() {
    EXPECT_TRUE(coordinator_->process().Running());
    EXPECT_THAT(coordinator_->admin().ListSites(), IsOk());
  }

  ScratchDir scratch_;
  TestProject project_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
};

TEST_F(SecurityTest, HonestPartiesAreIdentifiedByTheirCertificates) {
  RawSite site(Channel("site-1"), "site-1");
  ASSERT_THAT(coordinator_->admin().WaitForSites(1, absl::Seconds(20)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, coordinator_->admin().ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].site(), "site-1");
  EXPECT_EQ(sites[0].state(), "active");
  // Identity came from the certificate, so its expiry is known.
  EXPECT_GT(sites[0].certificate_expires(), absl::ToUnixSeconds(absl::Now()));
  EXPECT_THAT(ListRunsWith(Channel("auditor-1")), IsOk());
}

TEST_F(SecurityTest, CertificateFromAnotherCaIsRefused) {
  ScratchDir other_dir;
  TestProject other(other_dir.path());
  other.Add("site-1", PartyRole::kSite);
  // Trusting our CA but presenting the other project's certificate.
  auto channel = RawTlsChannel(coordinator_->address(), Read(project_.KitFile("site-1", "ca.pem")),
                               Read(other.KitFile("site-1", "key.pem")),
                               Read(other.KitFile("site-1", "cert.pem")));
  RawSite site(channel, "site-1");
  EXPECT_THAT(ToStatus(site.Finish()), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_THAT(
      ListRunsWith(RawTlsChannel(
          coordinator_->address(), Read(project_.KitFile("admin-1", "ca.pem")),
          Read(other.KitFile("admin-1", "key.pem")), Read(other.KitFile("admin-1", "cert.pem")))),
      StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, coordinator_->admin().ListSites());
  EXPECT_TRUE(sites.empty());
  ExpectStillServing();
}

TEST_F(SecurityTest, ExpiredCertificateIsRefused) {
  IssueOptions expired;
  expired.days = 1;
  expired.start_offset = absl::Hours(-24 * 30);
  project_.Add("site-old", PartyRole::kSite, expired);
  // A real client refuses to use it, naming the reason...
  CommandOutput client =
      RunCommand(absl::StrCat(Binary("fedmi-client"), project_.FlagString("site-old"),
                              " --coordinator ", coordinator_->address(), " --site site-old 2>&1"));
  EXPECT_EQ(client.exit_code, 1);
  EXPECT_THAT(client.stdout_text, HasSubstr("expired"));
  // ...and the coordinator refuses it in the handshake when forced.
  auto channel =
      RawTlsChannel(coordinator_->address(), Read(project_.KitFile("site-old", "ca.pem")),
                    Read(project_.KitFile("site-old", "key.pem")),
                    Read(project_.KitFile("site-old", "cert.pem")));
  RawSite site(channel, "site-old");
  EXPECT_THAT(ToStatus(site.Finish()), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  ExpectStillServing();
}

TEST_F(SecurityTest, RevokedSiteIsCutOffAtOnceAndAfterARestart) {
  RawSite honest(Channel("site-1"), "site-1");
  auto doomed = std::make_unique<RawSite>(Channel("site-2"), "site-2");
  ASSERT_THAT(coordinator_->admin().WaitForSites(2, absl::Seconds(20)), IsOk());

  CommandOutput revoke = RunCommand(
      absl::StrCat(Binary("fedmi"), project_.FlagString("admin-1"), " --coordinator ",
                   coordinator_->address(), " site revoke site-2 --reason 'laptop stolen' 2>&1"));
  ASSERT_EQ(revoke.exit_code, 0) << revoke.stdout_text;

  // Its open stream is closed with the reason.
  EXPECT_THAT(ToStatus(doomed->Finish()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
  // A new connection is refused, naming who revoked it and why.
  RawSite again(Channel("site-2"), "site-2");
  EXPECT_THAT(ToStatus(again.Finish()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("revoked by admin-1"), HasSubstr("laptop stolen"))));

  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, coordinator_->admin().ListSites());
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].state(), "active");
  EXPECT_TRUE(sites[0].connected());
  EXPECT_EQ(sites[1].state(), "revoked");
  EXPECT_EQ(sites[1].revoked_by(), "admin-1");
  EXPECT_GT(sites[1].revoked_at(), 0);

  // The revocation survives a restart.
  const std::string address = coordinator_->address();
  coordinator_->process().Kill();
  coordinator_ = std::make_unique<CoordinatorProcess>(scratch_.path(), &project_, address,
                                                      "coordinator-restarted.log");
  RawSite after_restart(Channel("site-2"), "site-2");
  EXPECT_THAT(ToStatus(after_restart.Finish()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked")));
  ASSERT_OK_AND_ASSIGN(sites, coordinator_->admin().ListSites());
  EXPECT_EQ(sites[1].state(), "revoked");
}

TEST_F(SecurityTest, SiteClaimingAnotherSitesNameIsRefused) {
  RawSite impostor(Channel("site-1"), "site-2");
  EXPECT_THAT(ToStatus(impostor.Finish()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("authenticated as 'site-1' says hello as 'site-2'")));
  ExpectStillServing();
}

TEST_F(SecurityTest, SiteCertificateCannotCallAdminRpcs) {
  EXPECT_THAT(StartRunWith(Channel("site-1")),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("'site-1' holds the site role; StartRun needs admin")));
  EXPECT_THAT(ListRunsWith(Channel("site-1")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site role")));
  ExpectStillServing();
}

TEST_F(SecurityTest, AuditorCannotStartARun) {
  EXPECT_THAT(StartRunWith(Channel("auditor-1")),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("'auditor-1' holds the auditor role; StartRun needs admin")));
  // An administrator's certificate cannot act as a site either.
  RawSite admin_as_site(Channel("admin-1"), "admin-1");
  EXPECT_THAT(ToStatus(admin_as_site.Finish()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("needs a site")));
  ExpectStillServing();

  // The auditor reads the audit log, which holds both refusals with who
  // was refused; a site may not read it.
  ASSERT_OK_AND_ASSIGN(auto auditor, cli::AdminClient::Connect(coordinator_->address(),
                                                               project_.Transport("auditor-1")));
  ASSERT_OK_AND_ASSIGN(audit::ExportedLog log, auditor->FetchAuditLog());
  bool auditor_denied = false, admin_refused = false;
  for (const auto& entry : log.entries) {
    auditor_denied |= entry.action() == "auth.denied" && entry.actor() == "auditor-1" &&
                      entry.detail_json().find("StartRun") != std::string::npos;
    admin_refused |= entry.action() == "site.refused" && entry.actor() == "admin-1";
  }
  EXPECT_TRUE(auditor_denied);
  EXPECT_TRUE(admin_refused);
  EXPECT_THAT(audit::VerifyLog(log.entries, log.head, log.signer_certificate_pem,
                               Read(project_.KitFile("auditor-1", "ca.pem"))),
              IsOk());
  ASSERT_OK_AND_ASSIGN(
      auto site, cli::AdminClient::Connect(coordinator_->address(), project_.Transport("site-1")));
  EXPECT_THAT(site->GetAuditInfo(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("site role")));
}

TEST_F(SecurityTest, PlaintextToTheTlsPortIsRefused) {
  auto plaintext = grpc::CreateChannel(coordinator_->address(), grpc::InsecureChannelCredentials());
  EXPECT_THAT(ListRunsWith(plaintext), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  ExpectStillServing();
}

TEST_F(SecurityTest, HandshakeNegotiatesTls13WithClientCertificates) {
  if (std::system("command -v openssl > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the openssl command is not installed";
  }
  CommandOutput probe = RunCommand(absl::StrCat(
      "openssl s_client -brief -connect ", coordinator_->address(), " -CAfile ",
      project_.KitFile("site-1", "ca.pem"), " -cert ", project_.KitFile("site-1", "cert.pem"),
      " -key ", project_.KitFile("site-1", "key.pem"), " -alpn h2 < /dev/null 2>&1"));
  EXPECT_THAT(probe.stdout_text, HasSubstr("Protocol version: TLSv1.3"));
  EXPECT_THAT(probe.stdout_text, HasSubstr("Verification: OK"));
  // A peer that offers only TLS 1.2, even with a valid kit, gets nowhere.
  CommandOutput old_tls = RunCommand(absl::StrCat(
      "openssl s_client -brief -tls1_2 -connect ", coordinator_->address(), " -CAfile ",
      project_.KitFile("site-1", "ca.pem"), " -cert ", project_.KitFile("site-1", "cert.pem"),
      " -key ", project_.KitFile("site-1", "key.pem"), " -alpn h2 < /dev/null 2>&1"));
  EXPECT_THAT(old_tls.stdout_text, Not(HasSubstr("CONNECTION ESTABLISHED")));
  ExpectStillServing();
}

TEST_F(SecurityTest, RevokedAdminIsCutOffMidWatchAndAfterARestart) {
  project_.Add("admin-2", PartyRole::kAdmin);
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(8);
  spec.set_rounds(1);
  spec.set_min_sites(2);  // no site connects: the run stays pending
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator_->admin().StartRun(spec));

  // admin-2's watch is open when admin-1 revokes it.
  auto stub = v1::Admin::NewStub(Channel("admin-2"));
  grpc::ClientContext watch;
  watch.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::RunRef ref;
  ref.set_run_id(run);
  std::unique_ptr<grpc::ClientReader<v1::RunStatus>> reader = stub->WatchRun(&watch, ref);
  v1::RunStatus status;
  ASSERT_TRUE(reader->Read(&status));
  const std::string admin_1 = absl::StrCat(Binary("fedmi"), project_.FlagString("admin-1"),
                                           " --coordinator ", coordinator_->address());
  CommandOutput revoke = RunCommand(
      absl::StrCat(admin_1, " revoke admin-2 --role admin --reason 'laptop stolen' 2>&1"));
  ASSERT_EQ(revoke.exit_code, 0) << revoke.stdout_text;
  while (reader->Read(&status)) {
  }
  EXPECT_THAT(ToStatus(reader->Finish()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("admin 'admin-2' was revoked by admin-1"),
                             HasSubstr("laptop stolen"))));
  EXPECT_THAT(ListRunsWith(Channel("admin-2")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("revoked by admin-1")));
  CommandOutput self =
      RunCommand(absl::StrCat(admin_1, " revoke admin-1 --role admin --reason oops 2>&1"));
  EXPECT_EQ(self.exit_code, 1);
  EXPECT_THAT(self.stdout_text, HasSubstr("cannot revoke itself"));

  const std::string address = coordinator_->address();
  coordinator_->process().Kill();
  coordinator_ = std::make_unique<CoordinatorProcess>(scratch_.path(), &project_, address,
                                                      "coordinator-restarted.log");
  EXPECT_THAT(ListRunsWith(Channel("admin-2")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("laptop stolen")));
  EXPECT_THAT(ListRunsWith(Channel("auditor-1")), IsOk());
  CommandOutput listed = RunCommand(absl::StrCat(admin_1, " revocations --json 2>&1"));
  ASSERT_EQ(listed.exit_code, 0) << listed.stdout_text;
  EXPECT_THAT(listed.stdout_text, AllOf(HasSubstr("\"admin-2\""), HasSubstr("\"admin\"")));
}

TEST_F(SecurityTest, ACertificateOnTheProjectCrlIsRefusedAndItsRenewalServed) {
  // auditor-1's and site-1's keys were copied: their certificates go into
  // the CRL, their names stay.
  ASSERT_THAT(RevokeIssued(project_.dir(), "auditor-1", "key copied"), IsOk());
  ASSERT_THAT(RevokeIssued(project_.dir(), "site-1", "key copied"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string crl, ProjectCrl(project_.dir()));
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), scratch_.Join("crl.pem"), crl), IsOk());
  // `crl` as a coordinator.toml would say it, relative to the config file.
  const std::string config = scratch_.Join("crl.toml");
  ASSERT_THAT(WriteFileAtomically(*Env::Default(), config, "crl = \"crl.pem\"\n"), IsOk());
  const std::string address = coordinator_->address();
  coordinator_->process().Kill();
  coordinator_ = std::make_unique<CoordinatorProcess>(
      scratch_.path(), &project_, address, "coordinator-crl.log",
      std::vector<std::string>{absl::StrCat("FEDMI_CONFIG=", config)});
  EXPECT_THAT(ListRunsWith(Channel("auditor-1")),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("'auditor-1'"), HasSubstr("revoked by the project CRL"))));
  {
    RawSite old_site(Channel("site-1"), "site-1");
    EXPECT_THAT(ToStatus(old_site.Finish()), StatusIs(absl::StatusCode::kPermissionDenied,
                                                      HasSubstr("revoked by the project CRL")));
  }
  // Renewed, both are served again as they are: the coordinator knows them
  // by name, and nothing else changed.
  ASSERT_THAT(RenewParty(project_.dir(), "auditor-1", 30), IsOk());
  EXPECT_THAT(ListRunsWith(Channel("auditor-1")), IsOk());
  ASSERT_THAT(RenewParty(project_.dir(), "site-1", 30), IsOk());
  RawSite renewed_site(Channel("site-1"), "site-1");
  EXPECT_THAT(coordinator_->admin().WaitForSites(1, absl::Seconds(20)), IsOk());
  ExpectStillServing();
}

TEST_F(SecurityTest, SitePolicyRefusesADisallowedModelAndTheCoordinatorSaysWhy) {
  // site-2 only trains cnn; site-1 has the default policy (without data it
  // accepts the synthetic benchmark model) and builds the initial model.
  const std::string policy = scratch_.Join("policy.toml");
  std::ofstream(policy) << "allowed_models = [\"cnn\"]\n";
  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (const std::string name : {"site-1", "site-2"}) {
    cli::SiteOptions options;
    options.name = name;
    options.log_path = scratch_.Join(name + ".log");
    options.give_up_after_s = 0;
    if (name == "site-2") options.policy = policy;
    sites.push_back(StartSite(project_, coordinator_->address(), options));
    ASSERT_NE(sites.back(), nullptr);
  }
  ASSERT_THAT(coordinator_->admin().WaitForSites(2, absl::Seconds(30)), IsOk());
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(8);
  spec.set_rounds(1);
  spec.set_min_sites(1);
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator_->admin().StartRun(spec));
  v1::RunStatus final_status;
  ASSERT_THAT(coordinator_->admin().WatchRun(run,
                                             [&](const v1::RunStatus& status) {
                                               final_status = status;
                                               return true;
                                             }),
              IsOk());
  // The round goes on with the willing site; the refusal and its reason are
  // on record.
  ASSERT_EQ(final_status.state(), "done") << final_status.error();
  ASSERT_EQ(final_status.rounds_size(), 1);
  bool saw_refusal = false;
  for (const auto& site : final_status.rounds(0).sites()) {
    if (site.site() != "site-2") continue;
    saw_refusal = true;
    EXPECT_EQ(site.state(), "refused");
    EXPECT_EQ(site.detail(), "site policy: model 'synthetic' is not in allowed_models [cnn]");
  }
  EXPECT_TRUE(saw_refusal);
  CommandOutput status =
      RunCommand(absl::StrCat(Binary("fedmi"), project_.FlagString("admin-1"), " --coordinator ",
                              coordinator_->address(), " run status ", run, " 2>&1"));
  EXPECT_THAT(status.stdout_text,
              HasSubstr("site-2 refused: site policy: model 'synthetic' is not in allowed_models"));
}

TEST_F(SecurityTest, SitePinsTheCoordinatorCertificateFingerprint) {
  // The kit's policy pins the real coordinator: the site connects.
  const std::string pinned = project_.KitFile("site-1", "policy.toml");
  cli::SiteOptions options;
  options.name = "site-1";
  options.log_path = scratch_.Join("pinned.log");
  options.give_up_after_s = 0;
  options.policy = pinned;
  std::unique_ptr<cli::ChildProcess> site = StartSite(project_, coordinator_->address(), options);
  ASSERT_NE(site, nullptr);
  EXPECT_THAT(coordinator_->admin().WaitForSites(1, absl::Seconds(20)), IsOk());
  site->Stop();

  // A pin on another certificate refuses even a coordinator from the same CA.
  const std::string wrong = scratch_.Join("wrong-pin.toml");
  std::ofstream(wrong) << "coordinator_fingerprint = \"" << std::string(64, 'a') << "\"\n";
  CommandOutput refused = RunCommand(absl::StrCat(
      Binary("fedmi-client"), project_.FlagString("site-2"), " --coordinator ",
      coordinator_->address(), " --site site-2 --policy ", wrong, " --give-up-after 2 2>&1"));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.stdout_text, HasSubstr("does not match the pinned"));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, coordinator_->admin().ListSites());
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].site(), "site-1");
}

// The one test of plaintext: it works, for local experiments, and says so.
TEST(InsecureModeTest, PlaintextWorksOnlyWhenAskedForAndWarns) {
  ScratchDir scratch;
  CoordinatorProcess coordinator(scratch.path(), /*project=*/nullptr);
  EXPECT_THAT(coordinator.admin().ListRuns(), IsOk());
  std::ifstream log(scratch.Join("coordinator.log"));
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("--insecure"));
  // Without --insecure, a party with no kit is told what it needs.
  CommandOutput no_kit = RunCommand(
      absl::StrCat(Binary("fedmi"), " --coordinator ", coordinator.address(), " run list 2>&1"));
  EXPECT_EQ(no_kit.exit_code, 1);
  EXPECT_THAT(no_kit.stdout_text, HasSubstr("mutual TLS needs --cert, --key and --ca"));
}

}  // namespace
}  // namespace fedmi
