// Shared by the SiteSession tests (site_session_test.cc, site_secagg_test.cc):
// a FakeLink stands for the coordinator's side of the wire and records what
// the site sends, downloads and uploads. The worker is a real SiteWorker on
// the synthetic benchmark model, which needs no data and no LibTorch: site-k
// returns the global model plus k/256 and reports 100 * k examples, so every
// expected value is exact. FakeSecAggCoordinator plays the coordinator of a
// secure round with the real SecAggSession.
#ifndef FEDMI_TESTS_CLIENT_SITE_SESSION_FIXTURE_H_
#define FEDMI_TESTS_CLIENT_SITE_SESSION_FIXTURE_H_

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
#include "client/site_session.h"
#include "common/audit/audit.h"
#include "common/base/env.h"
#include "common/base/status.h"
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

inline constexpr int64_t kRun = 7;
inline constexpr int64_t kParams = 64;

// The coordinator's end of one site's connection.
class FakeLink : public CoordinatorLink {
 public:
  struct ReceivedUpload {
    v1::UpdateMetadata metadata;
    TensorBundle bundle;
  };

  enum class Transfer { kDownload, kUpload };
  // Called, outside the link's lock, at the start of each download and upload
  // (e.g. to advance a fake clock by the time a transfer takes).
  void OnTransfer(std::function<void(Transfer)> hook) { transfer_hook_ = std::move(hook); }

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
    if (transfer_hook_) transfer_hook_(Transfer::kDownload);
    absl::MutexLock lock(&mu_);
    ++downloads_;
    auto it = models_.find(ref.round());
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no round ", ref.round()));
    return it->second;
  }
  absl::StatusOr<v1::UploadReceipt> Upload(const v1::UpdateMetadata& metadata,
                                           const TensorBundle& bundle) override {
    if (transfer_hook_) transfer_hook_(Transfer::kUpload);
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
  std::function<void(Transfer)> transfer_hook_;
  mutable absl::Mutex mu_;
  std::map<int32_t, TensorBundle> models_ ABSL_GUARDED_BY(mu_);
  absl::Status upload_error_ ABSL_GUARDED_BY(mu_);
  bool severed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::SiteMessage> sent_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceivedUpload> uploads_ ABSL_GUARDED_BY(mu_);
  int downloads_ ABSL_GUARDED_BY(mu_) = 0;
};

inline v1::RunSpec SyntheticSpec() {
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(kParams);
  spec.set_rounds(3);
  spec.set_local_epochs(1);
  // A broken exchange fails the test in seconds, not after the default hour.
  spec.set_round_timeout_s(20);
  return spec;
}

inline v1::CoordinatorMessage TrainTask(int32_t round, const v1::RunSpec& spec) {
  v1::CoordinatorMessage message;
  v1::TrainTask& task = *message.mutable_train();
  task.set_run_id(kRun);
  task.set_round(round);
  *task.mutable_spec() = spec;
  task.mutable_base()->set_run_id(kRun);
  task.mutable_base()->set_round(round - 1);
  return message;
}

inline v1::CoordinatorMessage EvalTask(int32_t round, const v1::RunSpec& spec) {
  v1::CoordinatorMessage message;
  message.mutable_eval()->set_run_id(kRun);
  message.mutable_eval()->set_round(round);
  *message.mutable_eval()->mutable_spec() = spec;
  message.mutable_eval()->mutable_model()->set_run_id(kRun);
  message.mutable_eval()->mutable_model()->set_round(round);
  return message;
}

inline v1::CoordinatorMessage Cancel(int32_t round) {
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
  static SiteWorkerOptions WorkerOptions(const std::string& name, std::optional<SitePolicy> policy,
                                         TrainingObserver* observer) {
    SiteWorkerOptions options;
    options.site = name;
    options.threads = 1;
    options.policy = std::move(policy);
    options.training_observer = observer;
    return options;
  }

  Site(const std::string& name, std::optional<SitePolicy> policy, SiteIdentityFiles identity = {},
       std::string receipts_dir = "", Env& env = *Env::Default(),
       TrainingObserver* observer = nullptr)
      : worker(WorkerOptions(name, std::move(policy), observer), std::nullopt),
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
  // Enrolls each of `names` and makes it a Site with `policy` (nullopt: the
  // defaults); `certs` gets their certificates, as the coordinator knows them.
  void EnrollSites(const std::vector<std::string>& names, const std::optional<SitePolicy>& policy,
                   std::map<std::string, std::string>* certs,
                   std::map<std::string, std::unique_ptr<Site>>* sites) {
    for (const std::string& name : names) {
      SiteIdentityFiles identity;
      ASSERT_NO_FATAL_FAILURE(Enroll(name, &identity));
      (*certs)[name] = parties_[name].cert_pem;
      (*sites)[name] = std::make_unique<Site>(name, policy, identity);
    }
  }

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

  // The end of a round as the coordinator runs it, once the sites in
  // `uploaded` have uploaded: the survivor set to sign, then the unmask
  // request (returned in `request`), to those sites; then the shares to
  // unmask the sum with.
  absl::StatusOr<UnmaskingInput> CloseAndUnmask(
      const std::set<std::string>& uploaded,
      const std::map<std::string, std::unique_ptr<Site>>& sites, v1::UnmaskRequest* request) {
    ASSIGN_OR_RETURN(v1::SurvivorSet survivors, CloseUploads(uploaded));
    v1::CoordinatorMessage sign;
    *sign.mutable_survivor_set() = survivors;
    for (const std::string& name : uploaded) sites.at(name)->session.Deliver(sign);
    if (!AwaitSignatures(static_cast<int>(uploaded.size()))) {
      return absl::DeadlineExceededError("the survivors did not sign in time");
    }
    ASSIGN_OR_RETURN(*request, CloseConsistency());
    v1::CoordinatorMessage unmask;
    *unmask.mutable_unmask_request() = *request;
    for (const std::string& name : uploaded) sites.at(name)->session.Deliver(unmask);
    if (!AwaitResponses(static_cast<int>(uploaded.size()))) {
      return absl::DeadlineExceededError("the survivors did not answer the unmask request in time");
    }
    return Unmasking();
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
inline bool AwaitTrue(const std::function<bool()>& done) {
  for (absl::Time until = absl::Now() + absl::Seconds(20); absl::Now() < until;) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// Every site's session in a secure round, running on a thread of its own:
// each gets the global model of the round before `round`, joins the
// coordinator, then gets `task`. Stops and joins them when destroyed, however
// the test ends.
class RunningSites {
 public:
  RunningSites(std::map<std::string, std::unique_ptr<Site>>& sites,
               FakeSecAggCoordinator& coordinator, int32_t round, const TensorBundle& global,
               const v1::CoordinatorMessage& task)
      : sites_(sites) {
    for (auto& [name, site] : sites_) {
      site->link.SetModel(round - 1, global);
      coordinator.Join(name, *site);
    }
    for (auto& [name, site] : sites_) {
      site->session.Deliver(task);
      threads_.emplace_back([&session = site->session] { session.RunTasks(); });
    }
  }
  ~RunningSites() {
    for (auto& [name, site] : sites_) site->session.Stop();
    for (std::thread& thread : threads_) thread.join();
  }
  RunningSites(const RunningSites&) = delete;
  RunningSites& operator=(const RunningSites&) = delete;

 private:
  std::map<std::string, std::unique_ptr<Site>>& sites_;
  std::vector<std::thread> threads_;
};

}  // namespace fedmi

#endif  // FEDMI_TESTS_CLIENT_SITE_SESSION_FIXTURE_H_
