// End-to-end tests: the real fedmi-coordinator, fedmi-client and fedmi
// binaries as separate processes talking gRPC over loopback.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "cli/child_process.h"
#include "common/image_data.h"
#include "common/npz.h"
#include "common/sha256.h"
#include "common/synthetic_model.h"
#include "common/rpc/bundle_stream.h"
#include "fedmi/v1/federation.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

struct CommandOutput {
  int exit_code = -1;
  std::string stdout_text;
};

// Runs a shell command, capturing stdout (stderr goes to the test log).
CommandOutput RunCommand(const std::string& command) {
  CommandOutput out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.stdout_text.append(buffer, n);
  int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string LastLine(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  size_t newline = trimmed.rfind('\n');
  return newline == std::string::npos ? trimmed : trimmed.substr(newline + 1);
}

std::string Binary(const std::string& name) {
  auto path = cli::FindBinary(name);
  EXPECT_TRUE(path.ok()) << path.status();
  return path.ok() ? *path : name;
}

// The real PneumoniaMNIST when the checkout has ../shared/data, otherwise a
// small synthetic stand-in with the same layout (bright blob = class 1).
std::string DataPath(const std::string& scratch) {
  if (const char* source = std::getenv("FEDMI_SOURCE_DIR")) {
    std::string real = absl::StrCat(source, "/../shared/data/pneumoniamnist.npz");
    if (access(real.c_str(), R_OK) == 0) return real;
  }
  std::mt19937 random(7);
  std::map<std::string, NpyArray> arrays;
  for (auto [split, rows] : {std::pair<std::string, int>{"train", 600}, {"val", 120},
                             {"test", 120}}) {
    NpyArray images{"|u1", {rows, 28, 28}, std::vector<char>(rows * 28 * 28)};
    NpyArray labels{"|u1", {rows, 1}, std::vector<char>(rows)};
    for (int i = 0; i < rows; ++i) {
      const int label = i % 3 == 0 ? 0 : 1;
      labels.data[i] = static_cast<char>(label);
      for (int p = 0; p < 28 * 28; ++p) {
        int value = static_cast<int>(random() % 60);
        const int y = p / 28, x = p % 28;
        if (label == 1 && y >= 8 && y < 20 && x >= 8 && x < 20) value += 150;
        images.data[i * 28 * 28 + p] = static_cast<char>(value);
      }
    }
    arrays[split + "_images"] = images;
    arrays[split + "_labels"] = labels;
  }
  std::string path = scratch + "/synthetic.npz";
  EXPECT_TRUE(WriteNpz(path, arrays).ok());
  return path;
}

// A coordinator process on a free loopback port.
class CoordinatorProcess {
 public:
  // `listen` may name a fixed port, to restart on the port sites know.
  explicit CoordinatorProcess(const std::string& dir, const std::string& listen = "127.0.0.1:0",
                              const std::string& log_name = "coordinator.log")
      : dir_(dir) {
    const std::string port_file = dir + "/port";
    std::remove(port_file.c_str());
    auto process = cli::ChildProcess::Spawn(
        {Binary("fedmi-coordinator"), "--insecure", "--listen", listen, "--port-file",
         port_file, "--db", dir + "/state/coordinator.db"},
        dir + "/" + log_name);
    EXPECT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
    for (int i = 0; i < 400 && address_.empty(); ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) address_ = absl::StrCat("127.0.0.1:", port);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_FALSE(address_.empty()) << process_->LogTail();
    TransportOptions transport;
    transport.insecure = true;
    admin_ = *cli::AdminClient::Connect(address_, transport);
  }
  const std::string& address() const { return address_; }
  cli::AdminClient& admin() { return *admin_; }
  cli::ChildProcess& process() { return *process_; }

 private:
  std::string dir_;
  std::string address_;
  std::unique_ptr<cli::ChildProcess> process_;
  std::unique_ptr<cli::AdminClient> admin_;
};

TEST(FederationProcessTest, ThreeSitesTrainOverLoopbackAndReportTestMetrics) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  const std::string json_out = scratch.path() + "/summary.json";
  CommandOutput out = RunCommand(absl::StrCat(
      Binary("fedmi"), " sim --sites 3 --rounds 2 --partition dirichlet --alpha 0.5 --seed 1",
      " --data ", data, " --work-dir ", scratch.path(), "/sim --json-out ", json_out,
      " --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  nlohmann::json summary = nlohmann::json::parse(LastLine(out.stdout_text));
  ASSERT_EQ(summary["per_round"].size(), 2u);
  for (const auto& round : summary["per_round"]) {
    EXPECT_GT(round["examples"].get<int64_t>(), 0);
    EXPECT_GT(round["auc"].get<double>(), 0.5);
  }
  // Two rounds of one local epoch already separate the classes well.
  EXPECT_GT(summary["test"]["auc"].get<double>(), 0.8);
  EXPECT_GT(summary["test"]["examples"].get<int64_t>(), 0);
  std::ifstream written(json_out);
  EXPECT_EQ(nlohmann::json::parse(written)["run_id"], summary["run_id"]);

  // The exported model evaluates the same through `fedmi model evaluate`.
  CommandOutput eval = RunCommand(absl::StrCat(Binary("fedmi"), " model evaluate --model ",
                                               summary["final_model"].get<std::string>(),
                                               " --data ", data, " --split test --json"));
  ASSERT_EQ(eval.exit_code, 0) << eval.stdout_text;
  nlohmann::json metrics = nlohmann::json::parse(LastLine(eval.stdout_text));
  EXPECT_NEAR(metrics["auc"].get<double>(), summary["test"]["auc"].get<double>(), 1e-9);
}

TEST(FederationProcessTest, BadInputGetsClearErrorsAndCoordinatorKeepsServing) {
  ScratchDir scratch;
  CoordinatorProcess coordinator(scratch.path());

  // A status request for an unknown run.
  auto unknown = coordinator.admin().GetRun(424242);
  EXPECT_THAT(unknown, StatusIs(absl::StatusCode::kNotFound, HasSubstr("424242")));

  // A client whose data file is missing exits 1 and names the file.
  CommandOutput missing = RunCommand(absl::StrCat(
      Binary("fedmi-client"), " --insecure --coordinator ", coordinator.address(),
      " --site site-1 --data ", scratch.path(), "/nope.npz 2>&1"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.stdout_text, HasSubstr("nope.npz"));
  EXPECT_THAT(missing.stdout_text, HasSubstr("does not exist"));

  // A corrupt npz.
  const std::string corrupt = scratch.path() + "/corrupt.npz";
  std::ofstream(corrupt) << "this is not a zip archive";
  CommandOutput bad = RunCommand(absl::StrCat(Binary("fedmi-client"),
                                              " --insecure --coordinator ",
                                              coordinator.address(), " --site site-1 --data ",
                                              corrupt, " 2>&1"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.stdout_text, HasSubstr("corrupt.npz"));

  // Usage errors exit 2.
  CommandOutput usage = RunCommand(absl::StrCat(Binary("fedmi"), " run status 2>&1"));
  EXPECT_EQ(usage.exit_code, 2);

  EXPECT_TRUE(coordinator.process().Running());
  EXPECT_THAT(coordinator.admin().ListSites(), IsOk());
}

// A hand-driven site: speaks the wire protocol directly, so it can send
// updates a real client never would.
class RawSite {
 public:
  RawSite(const std::string& address, const std::string& name) : name_(name) {
    channel_ = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    stub_ = v1::Federation::NewStub(channel_);
    stream_ = stub_->Connect(&context_);
    v1::SiteMessage hello;
    hello.mutable_hello()->set_site(name);
    stream_->Write(hello);
  }
  ~RawSite() {
    context_.TryCancel();
    stream_->Finish();
  }
  // Next task of the given kind (skips welcome messages).
  v1::CoordinatorMessage NextTask() {
    v1::CoordinatorMessage message;
    while (stream_->Read(&message)) {
      if (message.kind_case() != v1::CoordinatorMessage::kWelcome) return message;
    }
    ADD_FAILURE() << "control stream closed";
    return message;
  }
  absl::Status Upload(int64_t run, int32_t round, int64_t examples, const TensorBundle& bundle) {
    grpc::ClientContext context;
    v1::UploadReceipt receipt;
    auto writer = stub_->UploadUpdate(&context, &receipt);
    v1::UpdateMetadata metadata;
    metadata.set_run_id(run);
    metadata.set_round(round);
    metadata.set_site(name_);
    metadata.set_examples(examples);
    return UploadBundle(writer.get(), metadata, bundle);
  }

 private:
  std::string name_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SiteMessage, v1::CoordinatorMessage>> stream_;
};

TensorBundle FloatBundle(const std::string& name, std::vector<float> values) {
  TensorBundle bundle;
  bundle.specs.push_back(TensorSpec{name, DType::kFloat32, {static_cast<int64_t>(values.size())}});
  bundle.body.resize(values.size() * sizeof(float));
  std::memcpy(bundle.body.data(), values.data(), bundle.body.size());
  return bundle;
}

TEST(FederationProcessTest, MismatchedUpdateIsRefusedByNameAndShape) {
  ScratchDir scratch;
  CoordinatorProcess coordinator(scratch.path());
  RawSite site(coordinator.address(), "site-1");
  ASSERT_THAT(coordinator.admin().WaitForSites(1, absl::Seconds(20)), IsOk());

  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(4);
  spec.set_rounds(1);
  spec.set_min_sites(1);
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator.admin().StartRun(spec));

  v1::CoordinatorMessage init = site.NextTask();
  ASSERT_EQ(init.kind_case(), v1::CoordinatorMessage::kInit);
  ASSERT_THAT(site.Upload(run, 0, 0, FloatBundle("weights", {1, 2, 3, 4})), IsOk());
  v1::CoordinatorMessage train = site.NextTask();
  ASSERT_EQ(train.kind_case(), v1::CoordinatorMessage::kTrain);
  EXPECT_EQ(train.train().round(), 1);

  EXPECT_THAT(site.Upload(run, 1, 10, FloatBundle("weights", {1, 2, 3})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor 'weights' has shape [3], expected [4]")));
  EXPECT_THAT(site.Upload(run, 1, 10, FloatBundle("bias", {1, 2, 3, 4})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("named 'bias', expected 'weights'")));
  EXPECT_THAT(site.Upload(run, 7, 10, FloatBundle("weights", {1, 2, 3, 4})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("round 7")));
  EXPECT_THAT(site.Upload(run, 1, 0, FloatBundle("weights", {1, 2, 3, 4})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("example count")));

  // The round still accepts the honest update and completes.
  ASSERT_THAT(site.Upload(run, 1, 10, FloatBundle("weights", {2, 4, 6, 8})), IsOk());
  v1::CoordinatorMessage eval = site.NextTask();
  ASSERT_EQ(eval.kind_case(), v1::CoordinatorMessage::kEval);
  int32_t round = 0;
  ASSERT_OK_AND_ASSIGN(TensorBundle global, coordinator.admin().ExportModel(run, -1, &round));
  EXPECT_EQ(round, 1);
  std::vector<float> values(4);
  std::memcpy(values.data(), global.body.data(), 16);
  EXPECT_THAT(values, ::testing::ElementsAre(2, 4, 6, 8));
  EXPECT_TRUE(coordinator.process().Running());
}

// Each round's model is FedAvg of the previous one, so a final model equal
// to `rounds` applications proves no committed round was lost or applied
// twice across the crash.
TEST(FederationProcessTest, RunSurvivesCoordinatorKillAndSitesReconnect) {
  ScratchDir scratch;
  constexpr int kRounds = 60;
  constexpr int64_t kParams = 200000;
  auto coordinator = std::make_unique<CoordinatorProcess>(scratch.path());
  const std::string address = coordinator->address();
  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (int k = 1; k <= 2; ++k) {
    auto site = cli::ChildProcess::Spawn(
        {Binary("fedmi-client"), "--insecure", "--coordinator", address, "--site",
         absl::StrCat("site-", k), "--give-up-after", "60"},
        absl::StrCat(scratch.path(), "/site-", k, ".log"));
    ASSERT_THAT(site, IsOk());
    sites.push_back(*std::move(site));
  }
  ASSERT_THAT(coordinator->admin().WaitForSites(2, absl::Seconds(30)), IsOk());
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(kParams);
  spec.set_rounds(kRounds);
  spec.set_min_sites(2);
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator->admin().StartRun(spec));

  // Crash once a few rounds are committed, well before the end.
  int completed = 0;
  for (int i = 0; i < 600 && completed < 3; ++i) {
    auto status = coordinator->admin().GetRun(run);
    if (status.ok()) completed = status->completed_rounds();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(completed, 3);
  coordinator->process().Kill();
  // The run was cut off mid-way: the rest happens after the restart.
  ASSERT_LT(completed, kRounds - 10);
  coordinator.reset();

  coordinator = std::make_unique<CoordinatorProcess>(scratch.path(), address,
                                                     "coordinator-restarted.log");
  ASSERT_EQ(coordinator->address(), address);
  v1::RunStatus final_status;
  ASSERT_THAT(coordinator->admin().WatchRun(run,
                                           [&](const v1::RunStatus& status) {
                                             final_status = status;
                                             return true;
                                           }),
              IsOk());
  ASSERT_EQ(final_status.state(), "done") << final_status.error();
  ASSERT_EQ(final_status.rounds_size(), kRounds);
  for (int r = 0; r < kRounds; ++r) {
    EXPECT_EQ(final_status.rounds(r).round(), r + 1);
    EXPECT_EQ(final_status.rounds(r).state(), "evaluated");
  }

  int32_t round = 0;
  ASSERT_OK_AND_ASSIGN(TensorBundle model, coordinator->admin().ExportModel(run, -1, &round));
  EXPECT_EQ(round, kRounds);
  TensorBundle initial = SyntheticInitialModel(kParams);
  std::vector<float> expected(kParams);
  std::memcpy(expected.data(), initial.body.data(), initial.body.size());
  for (int r = 0; r < kRounds; ++r) expected = ExpectedSyntheticAggregate(expected, {1, 2});
  ASSERT_EQ(model.body.size(), expected.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(model.body.data(), expected.data(), model.body.size()), 0);
}

TEST(FederationProcessTest, BenchRoundAggregateIsExactFedAvg) {
  ScratchDir scratch;
  CommandOutput out = RunCommand(absl::StrCat(Binary("fedmi"),
                                              " bench round --sites 3 --params 3000000 "
                                              "--rounds 2 --json --work-dir ",
                                              scratch.path(), "/bench"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  nlohmann::json summary = nlohmann::json::parse(LastLine(out.stdout_text));
  EXPECT_TRUE(summary["aggregate_exact"].get<bool>());
  EXPECT_EQ(summary["round_seconds"].size(), 2u);
}

}  // namespace
}  // namespace fedmi
