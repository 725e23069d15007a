// SiteSession without sockets: a FakeLink stands for the coordinator's side
// of the wire and records what the site sends, downloads and uploads. The
// worker is a real SiteWorker on the synthetic benchmark model, which needs
// no data and no LibTorch: site-k returns the global model plus k/256 and
// reports 100 * k examples, so every expected value is exact.
//
// The secure-aggregation case plays the coordinator with the real
// SecAggSession and SecAggAggregator, routing keys and sealed shares between
// four sessions, one of which drops out after sharing.
#include "client/site_session.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/audit/audit.h"
#include "common/base/env.h"
#include "common/crypto/identity.h"
#include "common/provision/project_ca.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_participant.h"
#include "common/secagg/secagg_transcript.h"
#include "common/tensor/synthetic_model.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"
#include "coordinator/secagg_aggregator.h"
#include "coordinator/secagg_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/common/secagg/secagg_test_support.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kRun = 7;
constexpr int64_t kParams = 64;

// The coordinator's end of one site's connection.
class FakeLink : public CoordinatorLink {
 public:
  struct ReceivedUpload {
    v1::UpdateMetadata metadata;
    TensorBundle bundle;
  };

  // Called, outside the link's lock, with each message the site sends.
  void OnSend(std::function<void(const v1::SiteMessage&)> forward) {
    forward_ = std::move(forward);
  }
  void SetModel(int32_t round, TensorBundle model) {
    absl::MutexLock lock(&mu_);
    models_[round] = std::move(model);
  }
  void RefuseUploads(absl::Status status) {
    absl::MutexLock lock(&mu_);
    upload_error_ = std::move(status);
  }
  // The site is gone: nothing more it sends arrives.
  void Sever() {
    absl::MutexLock lock(&mu_);
    severed_ = true;
  }

  void Send(const v1::SiteMessage& message) override {
    {
      absl::MutexLock lock(&mu_);
      if (severed_) return;
      sent_.push_back(message);
    }
    if (forward_) forward_(message);
  }
  absl::StatusOr<TensorBundle> Download(const v1::ModelRef& ref) override {
    absl::MutexLock lock(&mu_);
    ++downloads_;
    auto it = models_.find(ref.round());
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no round ", ref.round()));
    return it->second;
  }
  absl::StatusOr<v1::UploadReceipt> Upload(const v1::UpdateMetadata& metadata,
                                           const TensorBundle& bundle) override {
    absl::MutexLock lock(&mu_);
    if (severed_) return absl::UnavailableError("the site is gone");
    if (!upload_error_.ok()) return upload_error_;
    uploads_.push_back(ReceivedUpload{metadata, bundle});
    v1::UploadReceipt receipt;
    receipt.set_run_id(metadata.run_id());
    receipt.set_round(metadata.round());
    receipt.set_site(metadata.site());
    receipt.set_examples(metadata.examples());
    receipt.set_signature("signed by the coordinator");
    return receipt;
  }

  std::vector<v1::SiteMessage> sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  std::vector<ReceivedUpload> uploads() const {
    absl::MutexLock lock(&mu_);
    return uploads_;
  }
  int downloads() const {
    absl::MutexLock lock(&mu_);
    return downloads_;
  }
  // Nothing was downloaded, uploaded or sent.
  bool Untouched() const {
    absl::MutexLock lock(&mu_);
    return downloads_ == 0 && uploads_.empty() && sent_.empty();
  }

 private:
  std::function<void(const v1::SiteMessage&)> forward_;
  mutable absl::Mutex mu_;
  std::map<int32_t, TensorBundle> models_ ABSL_GUARDED_BY(mu_);
  absl::Status upload_error_ ABSL_GUARDED_BY(mu_);
  bool severed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::SiteMessage> sent_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceivedUpload> uploads_ ABSL_GUARDED_BY(mu_);
  int downloads_ ABSL_GUARDED_BY(mu_) = 0;
};

v1::RunSpec SyntheticSpec() {
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(kParams);
  spec.set_rounds(3);
  spec.set_local_epochs(1);
  // A broken exchange fails the test in seconds, not after the default hour.
  spec.set_round_timeout_s(20);
  return spec;
}

v1::CoordinatorMessage TrainTask(int32_t round, const v1::RunSpec& spec) {
  v1::CoordinatorMessage message;
  v1::TrainTask& task = *message.mutable_train();
  task.set_run_id(kRun);
  task.set_round(round);
  *task.mutable_spec() = spec;
  task.mutable_base()->set_run_id(kRun);
  task.mutable_base()->set_round(round - 1);
  return message;
}

v1::CoordinatorMessage EvalTask(int32_t round, const v1::RunSpec& spec) {
  v1::CoordinatorMessage message;
  message.mutable_eval()->set_run_id(kRun);
  message.mutable_eval()->set_round(round);
  *message.mutable_eval()->mutable_spec() = spec;
  message.mutable_eval()->mutable_model()->set_run_id(kRun);
  message.mutable_eval()->mutable_model()->set_round(round);
  return message;
}

v1::CoordinatorMessage Cancel(int32_t round) {
  v1::CoordinatorMessage message;
  message.mutable_cancel()->set_run_id(kRun);
  message.mutable_cancel()->set_round(round);
  message.mutable_cancel()->set_reason("stopped by the operator");
  return message;
}

// A site process killed at a fault point once armed: from there on nothing
// it sends reaches the coordinator.
class CrashAt : public FaultHook {
 public:
  explicit CrashAt(FakeLink& link) : link_(link) {}
  void Arm(FaultPoint point) { armed_ = point; }
  void Reached(FaultPoint point, int32_t round) override {
    if (!armed_.has_value() || point != *armed_) return;
    crashed_in_round_ = round;
    link_.Sever();
  }
  int32_t crashed_in_round() const { return crashed_in_round_; }

 private:
  FakeLink& link_;
  std::optional<FaultPoint> armed_;
  std::atomic<int32_t> crashed_in_round_{-1};
};

// One site: its worker, its link and its session.
struct Site {
  Site(const std::string& name, std::optional<SitePolicy> policy, SiteIdentityFiles identity = {},
       std::string receipts_dir = "", Env& env = *Env::Default())
      : worker(SiteWorkerOptions{name, 1, std::move(policy), nullptr}, std::nullopt),
        session(SiteSessionOptions{name, std::move(identity), std::move(receipts_dir)}, worker,
                link, env, crash, clock) {
    session.Connected();
  }

  FakeClock clock;
  SiteWorker worker;
  FakeLink link;
  CrashAt crash{link};
  SiteSession session;
};

class SiteSessionTest : public ::testing::Test {
 protected:
  SiteSessionTest() : global_(SyntheticInitialModel(kParams)) {}

  // Issues `name` a site certificate of a test CA and writes its identity
  // files, as `fedmi provision` would.
  void Enroll(const std::string& name, SiteIdentityFiles* identity) {
    if (ca_ == nullptr) {
      ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
      ASSERT_OK_AND_ASSIGN(coordinator_, ca_->Issue("coordinator", PartyRole::kCoordinator, {}));
    }
    ASSERT_OK_AND_ASSIGN(parties_[name], ca_->Issue(name, PartyRole::kSite, {}));
    identity->key_file = dir_.Join(name + ".key");
    identity->cert_file = dir_.Join(name + ".crt");
    identity->ca_file = dir_.Join("ca.crt");
    Env& env = *Env::Default();
    ASSERT_THAT(WriteFileAtomically(env, identity->key_file, parties_[name].key_pem), IsOk());
    ASSERT_THAT(WriteFileAtomically(env, identity->cert_file, parties_[name].cert_pem), IsOk());
    ASSERT_THAT(WriteFileAtomically(env, identity->ca_file, ca_->ca_cert_pem()), IsOk());
  }

  // The run's secure-aggregation settings: defaults but for the clip.
  static v1::SecAggSettings SecAggSettings() {
    v1::SecAggSettings settings;
    settings.set_clip(0.5);
    settings.set_max_examples(1000);
    return settings;
  }

  // The coordinator's signed admission of `sites` to attempt 1 of `round`.
  v1::RoundAdmission Admission(int32_t round, const std::vector<std::string>& sites) {
    return SignedAdmission(coordinator_, TestRoundId(kRun, round), sites, SecAggSettings());
  }

  static v1::CoordinatorMessage SecureTrainTask(int32_t round,
                                                const v1::RoundAdmission& admission) {
    v1::RunSpec spec = SyntheticSpec();
    spec.set_secure_aggregation(true);
    *spec.mutable_secagg() = SecAggSettings();
    v1::CoordinatorMessage task = TrainTask(round, spec);
    *task.mutable_train()->mutable_secagg() = admission.params();
    *task.mutable_train()->mutable_admission() = admission;
    return task;
  }

  absl::StatusOr<std::unique_ptr<secagg::SecAggParticipant>> StartPeer(
      const std::string& name, const v1::RoundAdmission& admission) {
    return secagg::SecAggParticipant::Start(admission, SecAggSettings(), secagg::SecAggFloor{},
                                            name, parties_[name].key_pem, parties_[name].cert_pem,
                                            ca_->ca_cert_pem());
  }

  TensorBundle global_;
  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
  std::map<std::string, IssuedParty> parties_;
  IssuedParty coordinator_;
};

TEST_F(SiteSessionTest, PlainRoundTrainsUploadsKeepsTheReceiptAndReportsEvaluation) {
  Site site("site-2", std::nullopt, {}, dir_.Join("receipts"));
  site.link.SetModel(0, global_);
  const v1::RunSpec spec = SyntheticSpec();
  site.session.Deliver(TrainTask(1, spec));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.uploads().size(), 1u);
  const FakeLink::ReceivedUpload upload = site.link.uploads()[0];
  EXPECT_EQ(upload.metadata.run_id(), kRun);
  EXPECT_EQ(upload.metadata.round(), 1);
  EXPECT_EQ(upload.metadata.site(), "site-2");
  EXPECT_EQ(upload.metadata.examples(), 200);
  const std::vector<float> base = FloatsOf(global_);
  const std::vector<float> trained = FloatsOf(upload.bundle);
  ASSERT_EQ(trained.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) EXPECT_EQ(trained[i], base[i] + 2.0f / 256) << i;
  EXPECT_EQ(site.link.downloads(), 1);
  EXPECT_TRUE(site.link.sent().empty());

  v1::UploadReceipt receipt;
  receipt.set_run_id(kRun);
  receipt.set_round(1);
  receipt.set_site("site-2");
  receipt.set_examples(200);
  receipt.set_signature("signed by the coordinator");
  ASSERT_OK_AND_ASSIGN(std::string kept,
                       Env::Default()->ReadFile(dir_.Join("receipts/run-7-round-1.json")));
  EXPECT_EQ(kept, audit::ReceiptToJson(receipt) + "\n");

  // The synthetic model has nothing to evaluate: no download, an empty report.
  site.session.Deliver(EvalTask(1, spec));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));
  EXPECT_EQ(site.link.downloads(), 1);
  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage report = site.link.sent()[0];
  ASSERT_TRUE(report.has_eval_report());
  EXPECT_EQ(report.eval_report().run_id(), kRun);
  EXPECT_EQ(report.eval_report().round(), 1);
  EXPECT_EQ(report.eval_report().metrics().examples(), 0);
  EXPECT_FALSE(site.session.RunNextTask(absl::ZeroDuration()));
}

TEST_F(SiteSessionTest, ReceiptThatCannotBeWrittenDoesNotFailTheUpload) {
  FaultInjectionEnv env;
  env.FailCommits(absl::ResourceExhaustedError("No space left on device"));
  Site site("site-3", std::nullopt, {}, dir_.Join("receipts"), env);
  site.link.SetModel(0, global_);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.uploads().size(), 1u);
  EXPECT_EQ(site.link.uploads()[0].metadata.examples(), 300);
  EXPECT_TRUE(site.link.sent().empty());
  EXPECT_EQ(env.commits(), 0);
  EXPECT_FALSE(env.FileExists(dir_.Join("receipts/run-7-round-1.json")));
}

TEST_F(SiteSessionTest, TaskThePolicyForbidsIsRefusedBeforeTheModelIsFetched) {
  SitePolicy policy;
  policy.allowed_models = {"cnn"};
  Site site("site-1", policy);
  site.link.SetModel(0, global_);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_EQ(site.link.downloads(), 0);
  EXPECT_TRUE(site.link.uploads().empty());
  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage refusal = site.link.sent()[0];
  ASSERT_TRUE(refusal.has_refusal());
  EXPECT_EQ(refusal.refusal().run_id(), kRun);
  EXPECT_EQ(refusal.refusal().round(), 1);
  EXPECT_THAT(refusal.refusal().reason(), StartsWith("site policy: "));
  EXPECT_THAT(refusal.refusal().reason(), HasSubstr("synthetic"));
}

TEST_F(SiteSessionTest, CancelledRunIgnoresQueuedAndLateTasks) {
  Site site("site-1", std::nullopt);
  site.link.SetModel(0, global_);
  site.link.SetModel(1, global_);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  site.session.Deliver(Cancel(0));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));
  // A task that arrives after the cancel is ignored as well.
  site.session.Deliver(EvalTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_TRUE(site.link.Untouched());
}

TEST_F(SiteSessionTest, SecureTaskFromAnEndedConnectionIsDroppedWithoutAReport) {
  Site site("site-1", std::nullopt);
  site.link.SetModel(0, global_);
  v1::RoundAdmission admission;  // never looked at: the connection ended first
  *admission.mutable_params() = secagg::ResolveParams(SecAggSettings(), 4, 1000);
  site.session.Deliver(SecureTrainTask(1, admission));
  // The coordinator dropped this site from the round with that connection.
  site.session.Disconnected();
  site.session.Connected();
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_TRUE(site.link.Untouched());
}

TEST_F(SiteSessionTest, UploadTheCoordinatorTurnsDownIsNotReportedAsAFailure) {
  Site site("site-1", std::nullopt);
  site.link.SetModel(0, global_);
  site.link.RefuseUploads(absl::FailedPreconditionError("round 1 is closed"));
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  EXPECT_EQ(site.link.downloads(), 1);
  EXPECT_TRUE(site.link.sent().empty());
}

TEST_F(SiteSessionTest, MissingModelIsReportedAsATaskFailure) {
  Site site("site-1", std::nullopt);
  site.session.Deliver(TrainTask(1, SyntheticSpec()));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage failure = site.link.sent()[0];
  ASSERT_TRUE(failure.has_failure());
  EXPECT_EQ(failure.failure().round(), 1);
  EXPECT_EQ(failure.failure().reason(), "downloading the model of run 7 round 0: no round 0");
  EXPECT_FALSE(failure.failure().protocol_violation());
}

TEST_F(SiteSessionTest, UnmaskRequestForARoundNeverUploadedIsAFailureNotAReveal) {
  Site site("site-1", std::nullopt);
  v1::CoordinatorMessage request;
  request.mutable_unmask_request()->set_run_id(kRun);
  request.mutable_unmask_request()->set_round(2);
  site.session.Deliver(request);
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage failure = site.link.sent()[0];
  ASSERT_TRUE(failure.has_failure());
  EXPECT_EQ(failure.failure().round(), 2);
  EXPECT_THAT(failure.failure().reason(),
              HasSubstr("holds no secure-aggregation state for run 7 round 2"));
  EXPECT_FALSE(failure.failure().protocol_violation());
}

// Plays the coordinator's side of one secure round: checks every key
// advertisement and share with the real SecAggSession and routes them to the
// sites' sessions as the coordinator does.
class FakeSecAggCoordinator {
 public:
  FakeSecAggCoordinator(std::unique_ptr<SecAggSession> round,
                        std::map<std::string, std::string> certs)
      : round_(std::move(round)), certs_(std::move(certs)) {}

  void Join(const std::string& name, Site& site) {
    sessions_[name] = &site.session;
    site.link.OnSend([this, name](const v1::SiteMessage& message) { FromSite(name, message); });
  }

  void FromSite(const std::string& name, const v1::SiteMessage& message) {
    absl::MutexLock lock(&mu_);
    if (message.has_key_advertisement()) {
      EXPECT_THAT(round_->OnAdvertisement(name, message.key_advertisement(), certs_[name]), IsOk());
      if (!round_->AllAdvertised()) return;
      absl::StatusOr<v1::PeerKeys> peers = round_->ClosePeerKeys();
      ASSERT_THAT(peers.status(), IsOk());
      v1::CoordinatorMessage out;
      *out.mutable_peer_keys() = *peers;
      for (auto& [unused, session] : sessions_) session->Deliver(out);
    } else if (message.has_shares()) {
      EXPECT_THAT(round_->OnShares(name, message.shares()), IsOk());
      if (!round_->AllShared()) return;
      absl::StatusOr<std::map<std::string, v1::ShareBundle>> relayed = round_->CloseSharing();
      ASSERT_THAT(relayed.status(), IsOk());
      for (const auto& [recipient, bundle] : *relayed) {
        v1::CoordinatorMessage out;
        *out.mutable_relayed_shares() = bundle;
        sessions_.at(recipient)->Deliver(out);
      }
    } else if (message.has_survivor_signature()) {
      EXPECT_THAT(round_->OnSurvivorSignature(name, message.survivor_signature()), IsOk());
      ++signatures_;
    } else if (message.has_unmask_response()) {
      EXPECT_THAT(round_->OnUnmaskResponse(name, message.unmask_response()), IsOk());
      ++responses_;
    } else {
      ADD_FAILURE() << name << " sent " << message.ShortDebugString();
    }
  }

  bool AwaitSignatures(int count) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return signatures_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(20));
  }

  bool AwaitResponses(int count) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return responses_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(20));
  }

  absl::StatusOr<v1::SurvivorSet> CloseUploads(const std::set<std::string>& uploaded) {
    absl::MutexLock lock(&mu_);
    return round_->CloseUploads(uploaded);
  }
  absl::StatusOr<v1::UnmaskRequest> CloseConsistency() {
    absl::MutexLock lock(&mu_);
    return round_->CloseConsistency();
  }
  absl::StatusOr<UnmaskingInput> Unmasking() {
    absl::MutexLock lock(&mu_);
    return round_->Unmasking();
  }

 private:
  absl::Mutex mu_;
  std::unique_ptr<SecAggSession> round_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> certs_;
  std::map<std::string, SiteSession*> sessions_;
  int signatures_ ABSL_GUARDED_BY(mu_) = 0;
  int responses_ ABSL_GUARDED_BY(mu_) = 0;
};

// Polls `done` for up to 20 s.
bool AwaitTrue(const std::function<bool()>& done) {
  for (absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until;) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST_F(SiteSessionTest, ForgedPeerKeyIsReportedAsAProtocolViolationNamingTheSite) {
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  // `identity` is site-4's now; the session under test is site-1.
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  const v1::RoundAdmission admission = Admission(1, names);
  ASSERT_OK_AND_ASSIGN(
      auto round, SecAggSession::Create(secagg::RoundIdOf(admission), admission.params(), names,
                                        ca_->ca_cert_pem()));
  site.session.Deliver(SecureTrainTask(1, admission));
  std::thread task_thread([&] { site.session.RunNextTask(absl::ZeroDuration()); });
  auto join = absl::MakeCleanup([&] {
    site.session.Stop();
    task_thread.join();
  });

  ASSERT_TRUE(AwaitTrue([&] { return !site.link.sent().empty(); }));
  ASSERT_TRUE(site.link.sent()[0].has_key_advertisement());
  ASSERT_THAT(round->OnAdvertisement("site-1", site.link.sent()[0].key_advertisement(),
                                     parties_["site-1"].cert_pem),
              IsOk());
  std::vector<std::unique_ptr<secagg::SecAggParticipant>> peers;
  for (const std::string name : {"site-2", "site-3", "site-4"}) {
    ASSERT_OK_AND_ASSIGN(auto peer, StartPeer(name, admission));
    ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, peer->Advertisement());
    ASSERT_THAT(round->OnAdvertisement(name, ad, parties_[name].cert_pem), IsOk());
    peers.push_back(std::move(peer));
  }
  ASSERT_OK_AND_ASSIGN(v1::PeerKeys keys, round->ClosePeerKeys());
  // A cheating coordinator swaps in a mask key of its own for site-2.
  for (v1::KeyAdvertisement& ad : *keys.mutable_sites()) {
    if (ad.site() == "site-2") ad.set_mask_public_key(std::string(32, '\x42'));
  }
  v1::CoordinatorMessage message;
  *message.mutable_peer_keys() = keys;
  site.session.Deliver(message);

  ASSERT_TRUE(AwaitTrue([&] { return site.link.sent().size() >= 2; }));
  const v1::SiteMessage failure = site.link.sent()[1];
  ASSERT_TRUE(failure.has_failure()) << failure.ShortDebugString();
  EXPECT_TRUE(failure.failure().protocol_violation());
  EXPECT_THAT(failure.failure().reason(), StartsWith("secure aggregation: "));
  EXPECT_THAT(failure.failure().reason(), HasSubstr("site-2"));
  // Nothing was shared, downloaded or uploaded.
  EXPECT_EQ(site.link.sent().size(), 2u);
  EXPECT_EQ(site.link.downloads(), 0);
  EXPECT_TRUE(site.link.uploads().empty());
}

// Distributed site-level DP noise is sized for expected_sites shares. A
// cheating coordinator that admits five sites but relays the keys of only
// four (each CA-verified, so it cannot invent the fifth) would leave the sum
// short of one share: the site refuses before sharing anything.
TEST_F(SiteSessionTest, DistributedDpNoiseRefusesKeysFromFewerSitesThanItsSharesNeed) {
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4", "site-5"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  const v1::RoundAdmission admission = Admission(1, names);
  ASSERT_OK_AND_ASSIGN(
      auto round, SecAggSession::Create(secagg::RoundIdOf(admission), admission.params(), names,
                                        ca_->ca_cert_pem()));
  v1::CoordinatorMessage task = SecureTrainTask(1, admission);
  *task.mutable_train()->mutable_spec()->mutable_dp() =
      CompletedSiteDp(/*clip=*/0.01, /*noise_multiplier=*/1.0, v1::DP_NOISE_DISTRIBUTED,
                      /*expected_sites=*/5);
  site.session.Deliver(task);
  std::thread task_thread([&] { site.session.RunNextTask(absl::ZeroDuration()); });
  auto join = absl::MakeCleanup([&] {
    site.session.Stop();
    task_thread.join();
  });

  ASSERT_TRUE(AwaitTrue([&] { return !site.link.sent().empty(); }));
  ASSERT_TRUE(site.link.sent()[0].has_key_advertisement())
      << site.link.sent()[0].ShortDebugString();
  ASSERT_THAT(round->OnAdvertisement("site-1", site.link.sent()[0].key_advertisement(),
                                     parties_["site-1"].cert_pem),
              IsOk());
  std::vector<std::unique_ptr<secagg::SecAggParticipant>> peers;
  for (const std::string name : {"site-2", "site-3", "site-4"}) {  // site-5's keys withheld
    ASSERT_OK_AND_ASSIGN(auto peer, StartPeer(name, admission));
    ASSERT_OK_AND_ASSIGN(v1::KeyAdvertisement ad, peer->Advertisement());
    ASSERT_THAT(round->OnAdvertisement(name, ad, parties_[name].cert_pem), IsOk());
    peers.push_back(std::move(peer));
  }
  ASSERT_OK_AND_ASSIGN(v1::PeerKeys keys, round->ClosePeerKeys());
  ASSERT_EQ(keys.sites_size(), 4);
  v1::CoordinatorMessage message;
  *message.mutable_peer_keys() = keys;
  site.session.Deliver(message);

  ASSERT_TRUE(AwaitTrue([&] { return site.link.sent().size() >= 2; }));
  const v1::SiteMessage failure = site.link.sent()[1];
  ASSERT_TRUE(failure.has_failure()) << failure.ShortDebugString();
  EXPECT_TRUE(failure.failure().protocol_violation());
  EXPECT_THAT(failure.failure().reason(),
              AllOf(HasSubstr("only 4 sites advertised keys"), HasSubstr("shared among 5")));
  EXPECT_EQ(site.link.sent().size(), 2u) << "no share left the site";
  EXPECT_TRUE(site.link.uploads().empty());
}

TEST_F(SiteSessionTest, SecureRoundSumsTheSurvivorsWhenASiteDropsOutAfterSharing) {
  constexpr int32_t kRound = 2;
  // Five sites: 4 neighbours each and t = 3, so one may drop and t + 1 remain.
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4", "site-5"};
  const std::string dropout = "site-2";
  std::map<std::string, std::string> certs;
  std::map<std::string, std::unique_ptr<Site>> sites;
  for (const std::string& name : names) {
    SiteIdentityFiles identity;
    ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
    certs[name] = parties_[name].cert_pem;
    sites[name] = std::make_unique<Site>(name, std::nullopt, identity);
  }
  const v1::RoundAdmission admission = Admission(kRound, names);
  const v1::SecAggParams& params = admission.params();
  ASSERT_OK_AND_ASSIGN(auto round, SecAggSession::Create(secagg::RoundIdOf(admission), params,
                                                         names, ca_->ca_cert_pem()));
  sites[dropout]->crash.Arm(FaultPoint::kSiteBeforeMaskedUpload);
  FakeSecAggCoordinator coordinator(std::move(round), certs);
  std::vector<std::thread> task_threads;
  for (auto& [name, site] : sites) {
    site->link.SetModel(kRound - 1, global_);
    coordinator.Join(name, *site);
  }
  const v1::CoordinatorMessage task = SecureTrainTask(kRound, admission);
  for (auto& [name, site] : sites) {
    site->session.Deliver(task);
    task_threads.emplace_back([&session = site->session] { session.RunTasks(); });
  }
  // Stops the sessions however the test ends.
  auto stop = absl::MakeCleanup([&] {
    for (auto& [name, site] : sites) site->session.Stop();
    for (std::thread& thread : task_threads) thread.join();
  });

  ASSERT_OK_AND_ASSIGN(auto store, ModelStore::Open(dir_.Join("models")));
  ASSERT_OK_AND_ASSIGN(std::string global_path, WriteBundleFile(store->dir(), global_));
  secagg::QuantizationOptions quantization;
  quantization.clip = params.clip();
  quantization.max_sites = params.max_sites();
  ASSERT_OK_AND_ASSIGN(auto aggregator, SecAggAggregator::Create(quantization));
  ASSERT_THAT(aggregator->Begin(kRound, global_.specs, global_path), IsOk());
  std::set<std::string> uploaded;
  for (const std::string& name : names) {
    if (name == dropout) continue;
    ASSERT_TRUE(AwaitTrue([&] { return !sites[name]->link.uploads().empty(); })) << name;
    const FakeLink::ReceivedUpload upload = sites[name]->link.uploads()[0];
    EXPECT_EQ(upload.metadata.examples(), 100 * SyntheticSiteIndex(name));
    // The default policy withholds this site's own training metrics beside
    // its masked update; the example count stays, for the weight.
    EXPECT_FALSE(upload.metadata.has_train_metrics()) << name;
    ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), upload.bundle));
    ASSERT_OK_AND_ASSIGN(auto reader, BundleFileReader::Open(path));
    const double weight = static_cast<double>(upload.metadata.examples()) / params.max_examples();
    ASSERT_THAT(aggregator->Accept(name, weight, *reader), IsOk());
    uploaded.insert(name);
  }
  EXPECT_EQ(sites[dropout]->crash.crashed_in_round(), kRound);
  EXPECT_TRUE(sites[dropout]->link.uploads().empty());

  ASSERT_OK_AND_ASSIGN(v1::SurvivorSet survivors, coordinator.CloseUploads(uploaded));
  v1::CoordinatorMessage sign;
  *sign.mutable_survivor_set() = survivors;
  for (const std::string& name : uploaded) sites[name]->session.Deliver(sign);
  ASSERT_TRUE(coordinator.AwaitSignatures(static_cast<int>(uploaded.size())));
  ASSERT_OK_AND_ASSIGN(v1::UnmaskRequest request, coordinator.CloseConsistency());
  EXPECT_THAT(request.dropped(), ElementsAre(dropout));
  v1::CoordinatorMessage unmask;
  *unmask.mutable_unmask_request() = request;
  for (const std::string& name : uploaded) sites[name]->session.Deliver(unmask);
  ASSERT_TRUE(coordinator.AwaitResponses(static_cast<int>(uploaded.size())));
  ASSERT_OK_AND_ASSIGN(UnmaskingInput input, coordinator.Unmasking());
  ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store, input));
  ASSERT_OK_AND_ASSIGN(std::string model_path, store->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle result, ReadBundleFile(model_path));

  // Survivors 1, 3, 4, 5 add k/256 with weight k/10: the mean delta is
  // (1 + 9 + 16 + 25) / (1 + 3 + 4 + 5) / 256 = (51 / 13) / 256. With site-2
  // it would be (55 / 15) / 256, far outside the codec's bound.
  ASSERT_OK_AND_ASSIGN(auto codec, secagg::FixedPointCodec::Create(quantization));
  const double bound = codec.ErrorBound(4) / 1.3 + 1e-6;
  ASSERT_LT(bound, (51.0 / 13 - 55.0 / 15) / 256);
  const std::vector<float> base = FloatsOf(global_);
  const std::vector<float> got = FloatsOf(result);
  ASSERT_EQ(got.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_NEAR(got[i], base[i] + (51.0 / 13) / 256, bound) << i;
  }
}

TEST_F(SiteSessionTest, SecureRoundBelowThePolicyFloorIsARefusalNotAViolation) {
  // Three sites give each 2 neighbours; the default policy wants 3.
  const std::vector<std::string> names = {"site-1", "site-2", "site-3"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  site.session.Deliver(SecureTrainTask(1, Admission(1, names)));
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  ASSERT_EQ(site.link.sent().size(), 1u);
  const v1::SiteMessage refusal = site.link.sent()[0];
  ASSERT_TRUE(refusal.has_refusal()) << refusal.ShortDebugString();
  EXPECT_THAT(refusal.refusal().reason(),
              HasSubstr("site policy: secure aggregation would mask with 2 neighbours"));
  EXPECT_EQ(site.link.downloads(), 0);
}

TEST_F(SiteSessionTest, AdmissionReusingTheNonceOfACancelledAttemptIsAViolation) {
  const std::vector<std::string> names = {"site-1", "site-2", "site-3", "site-4"};
  SiteIdentityFiles identity;
  for (const std::string& name : names) ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
  identity.key_file = dir_.Join("site-1.key");
  identity.cert_file = dir_.Join("site-1.crt");
  Site site("site-1", std::nullopt, identity);
  site.link.SetModel(0, global_);
  const v1::CoordinatorMessage task = SecureTrainTask(1, Admission(1, names));
  site.session.Deliver(task);
  std::thread task_thread([&] { site.session.RunNextTask(absl::ZeroDuration()); });
  ASSERT_TRUE(AwaitTrue([&] { return !site.link.sent().empty(); }));
  ASSERT_TRUE(site.link.sent()[0].has_key_advertisement());
  // The attempt is abandoned while the site waits for the peer keys...
  site.session.Deliver(Cancel(1));
  task_thread.join();
  // ...and "retried" with the very same admission, so that the cancelled
  // attempt's advertisements and shares would count again.
  site.session.Deliver(task);
  ASSERT_TRUE(site.session.RunNextTask(absl::ZeroDuration()));

  const v1::SiteMessage failure = site.link.sent().back();
  ASSERT_TRUE(failure.has_failure()) << failure.ShortDebugString();
  EXPECT_TRUE(failure.failure().protocol_violation());
  EXPECT_THAT(failure.failure().reason(), HasSubstr("reuses the nonce of an earlier attempt"));
  EXPECT_EQ(site.link.downloads(), 0);
}

}  // namespace
}  // namespace fedmi
