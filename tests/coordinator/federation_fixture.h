// Shared by the Federation tests: sites are recording SiteChannels, uploads
// are bundle files written into the spool directory, time is a FakeClock.
#ifndef FEDMI_TESTS_COORDINATOR_FEDERATION_FIXTURE_H_
#define FEDMI_TESTS_COORDINATOR_FEDERATION_FIXTURE_H_

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/federation.h"
#include "coordinator/model_store.h"
#include "coordinator/storage.h"
#include "tests/coordinator/state_printers.h"
#include "tests/test_util.h"

namespace fedmi {

using Kind = v1::CoordinatorMessage::KindCase;

// A site's control stream that keeps everything sent to it.
class RecordingChannel : public SiteChannel {
 public:
  bool Send(const v1::CoordinatorMessage& message) override {
    if (closed_) return false;
    messages_.push_back(message);
    return true;
  }
  void Close(const absl::Status& status) override {
    closed_ = true;
    close_status_ = status;
  }

  // Messages of `kind` received since the last Clear().
  std::vector<v1::CoordinatorMessage> Of(Kind kind) const {
    std::vector<v1::CoordinatorMessage> out;
    for (const auto& message : messages_) {
      if (message.kind_case() == kind) out.push_back(message);
    }
    return out;
  }
  const std::vector<v1::CoordinatorMessage>& messages() const { return messages_; }
  void Clear() { messages_.clear(); }
  bool closed() const { return closed_; }
  const absl::Status& close_status() const { return close_status_; }

 private:
  std::vector<v1::CoordinatorMessage> messages_;
  bool closed_ = false;
  absl::Status close_status_;
};

// Every named site is connected and has 100 training examples.
class ConnectedRoster : public SiteRoster {
 public:
  explicit ConnectedRoster(std::vector<std::string> sites) : sites_(std::move(sites)) {}
  std::vector<std::string> ConnectedSites() const override { return sites_; }
  bool Send(const std::string&, const v1::CoordinatorMessage&) override { return true; }
  int64_t TrainExamples(const std::string&) const override { return 100; }

 private:
  std::vector<std::string> sites_;
};

inline const std::vector<TensorSpec>& ModelSpecs() {
  static const std::vector<TensorSpec>* specs = new std::vector<TensorSpec>{
      {"fc.weight", DType::kFloat32, {2, 2}}, {"fc.bias", DType::kFloat32, {2}}};
  return *specs;
}

inline TensorBundle Model(const std::vector<float>& values) {
  TensorBundle bundle = FloatBundle(ModelSpecs(), values);
  EXPECT_EQ(bundle.body.size(), bundle.ExpectedBodyBytes());
  return bundle;
}

inline std::string Sha256Of(const TensorBundle& bundle) {
  return Sha256::Digest(absl::string_view(bundle.body.data(), bundle.body.size()));
}

inline Caller CallerAs(const std::string& name, PartyRole role) {
  Caller caller;
  caller.name = name;
  caller.role = role;
  return caller;
}
inline Caller SiteCaller(const std::string& name) { return CallerAs(name, PartyRole::kSite); }
inline Caller Admin() { return CallerAs("alice", PartyRole::kAdmin); }

inline v1::RunSpec Spec(int32_t rounds, int32_t min_sites) {
  v1::RunSpec spec;
  spec.set_rounds(rounds);
  spec.set_min_sites(min_sites);
  spec.set_seed(7);
  spec.set_round_timeout_s(60);
  return spec;
}

inline v1::Metrics EvalMetrics(int64_t examples, double loss, double accuracy, double auc) {
  v1::Metrics metrics;
  metrics.set_examples(examples);
  metrics.set_loss(loss);
  metrics.set_accuracy(accuracy);
  metrics.set_auc(auc);
  return metrics;
}

class FederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(models_, ModelStore::Open(dir_.Join("models"), *models_env_));
    options_.spool_dir = dir_.Join("spool");
    Restart();
  }

  // Replaces the Federation by a fresh one over the same storage and models,
  // as a coordinator restart would. Every site has to connect again.
  void Restart() {
    federation_.reset();
    channels_.clear();
    sessions_.clear();
    federation_ = std::make_unique<Federation>(storage_.get(), models_.get(), &clock_, options_);
    ASSERT_THAT(federation_->Start(), IsOk());
  }

  std::shared_ptr<RecordingChannel> Connect(const std::string& site) {
    auto channel = std::make_shared<RecordingChannel>();
    v1::Hello hello;
    hello.set_site(site);
    hello.set_train_examples(100);
    hello.set_val_examples(20);
    absl::StatusOr<uint64_t> session = federation_->SiteConnected(SiteCaller(site), hello, channel);
    EXPECT_THAT(session, IsOk());
    if (session.ok()) sessions_[site] = *session;
    channels_[site] = channel;
    return channel;
  }

  void Disconnect(const std::string& site) {
    federation_->SiteDisconnected(site, sessions_.at(site));
  }

  RecordingChannel& Channel(const std::string& site) { return *channels_.at(site); }

  int64_t StartRun(const v1::RunSpec& spec) {
    absl::StatusOr<int64_t> run = federation_->StartRun(Admin(), spec);
    EXPECT_THAT(run, IsOk());
    return run.ok() ? *run : -1;
  }

  static v1::UpdateMetadata Metadata(const std::string& site, int64_t run, int32_t round,
                                     int64_t examples) {
    v1::UpdateMetadata metadata;
    metadata.set_site(site);
    metadata.set_run_id(run);
    metadata.set_round(round);
    metadata.set_examples(examples);
    metadata.mutable_train_metrics()->set_examples(examples);
    metadata.mutable_train_metrics()->set_loss(0.5);
    return metadata;
  }

  // What the gRPC adapter hands the core after a verified upload: a bundle
  // file in the spool directory.
  absl::StatusOr<ReceivedUpdate> Spool(const v1::UpdateMetadata& metadata,
                                       const TensorBundle& bundle) {
    ReceivedUpdate update;
    ASSIGN_OR_RETURN(std::string path, WriteBundleFile(options_.spool_dir, bundle, &update.sha256));
    update.path = path + "." + metadata.site();
    if (std::rename(path.c_str(), update.path.c_str()) != 0) {
      return absl::InternalError("rename failed");
    }
    update.metadata = metadata;
    update.bytes = bundle.body.size();
    return update;
  }

  absl::Status Upload(const std::string& site, int64_t run, int32_t round,
                      const TensorBundle& bundle, int64_t examples = 1) {
    const v1::UpdateMetadata metadata = Metadata(site, run, round, examples);
    RETURN_IF_ERROR(federation_->BeginUpload(SiteCaller(site), metadata).status());
    ASSIGN_OR_RETURN(ReceivedUpdate update, Spool(metadata, bundle));
    return federation_->CompleteUpload(SiteCaller(site), std::move(update)).status();
  }

  absl::Status Report(const std::string& site, int64_t run, int32_t round,
                      const v1::Metrics& metrics) {
    v1::SiteMessage message;
    message.mutable_eval_report()->set_run_id(run);
    message.mutable_eval_report()->set_round(round);
    *message.mutable_eval_report()->mutable_metrics() = metrics;
    return federation_->OnSiteMessage(SiteCaller(site), message);
  }

  absl::StatusOr<TensorBundle> ReadModel(int64_t run, int32_t round) {
    v1::ModelRef ref;
    ref.set_run_id(run);
    ref.set_round(round);
    ASSIGN_OR_RETURN(std::string path, federation_->ModelPath(ref));
    return ReadBundleFile(path);
  }

  v1::RunStatus Status(int64_t run) {
    absl::StatusOr<v1::RunStatus> status = federation_->GetRun(run);
    EXPECT_THAT(status, IsOk());
    return status.ok() ? *status : v1::RunStatus();
  }

  // Connects `sites`, starts a run and has the first site (by name) upload
  // the initial model (zeros unless given), so round 1 is training when it
  // returns.
  int64_t StartTraining(const v1::RunSpec& spec, const std::vector<std::string>& sites,
                        const TensorBundle& initial = Model({0, 0, 0, 0, 0, 0})) {
    for (const auto& site : sites) Connect(site);
    const int64_t run = StartRun(spec);
    EXPECT_THAT(Channel(sites.front()).Of(Kind::kInit), ::testing::SizeIs(1));
    EXPECT_THAT(Upload(sites.front(), run, 0, initial), IsOk());
    return run;
  }

  size_t SpoolFileCount() const {
    size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(options_.spool_dir)) {
      (void)entry;
      ++count;
    }
    return count;
  }

  ScratchDir dir_;
  std::unique_ptr<Storage> storage_ = NewMemoryStorage();
  std::unique_ptr<ModelStore> models_;
  // The model store's file system; a fault test sets it before SetUp().
  Env* models_env_ = Env::Default();
  FakeClock clock_;
  FederationOptions options_;
  std::unique_ptr<Federation> federation_;
  std::map<std::string, std::shared_ptr<RecordingChannel>> channels_;
  std::map<std::string, uint64_t> sessions_;
};

}  // namespace fedmi

#endif  // FEDMI_TESTS_COORDINATOR_FEDERATION_FIXTURE_H_
