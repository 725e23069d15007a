// Shared by the integration tests: GoogleTest wrappers over the local
// federation harness (cli/local_federation.h), which runs the real binaries
// as processes on loopback with a throwaway provisioned project so that
// everything talks mutual TLS as a deployment does. What only tests need
// stays here: synthetic data, raw TLS channels and a hand-driven site.
#ifndef FEDMI_TESTS_INTEGRATION_PROCESS_FIXTURE_H_
#define FEDMI_TESTS_INTEGRATION_PROCESS_FIXTURE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "cli/child_process.h"
#include "cli/local_federation.h"
#include "common/crypto/identity.h"
#include "common/data/npz.h"
#include "common/provision/kits.h"
#include "common/provision/project_ca.h"
#include "common/rpc/bundle_stream.h"
#include "common/rpc/channels.h"
#include "common/rpc/grpc_status.h"
#include "fedmi/v1/federation.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {

struct CommandOutput {
  int exit_code = -1;
  std::string stdout_text;
};

// A loopback port nothing listens on right now (cli::FreeLoopbackPort).
inline int FreePort() { return cli::FreeLoopbackPort(); }

// Runs a shell command, capturing stdout (stderr goes to the test log).
inline CommandOutput RunCommand(const std::string& command) {
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

inline std::string LastLine(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  size_t newline = trimmed.rfind('\n');
  return newline == std::string::npos ? trimmed : trimmed.substr(newline + 1);
}

inline std::string Binary(const std::string& name) {
  auto path = cli::FindBinary(name);
  EXPECT_TRUE(path.ok()) << path.status();
  return path.ok() ? *path : name;
}

// A small stand-in for PneumoniaMNIST with the same layout (bright blob =
// class 1), its noise drawn from `seed`, written to `path`.
inline std::string WriteSyntheticNpz(const std::string& path, uint32_t seed) {
  std::mt19937 random(seed);
  std::map<std::string, NpyArray> arrays;
  for (auto [split, rows] :
       {std::pair<std::string, int>{"train", 600}, {"val", 120}, {"test", 120}}) {
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
  EXPECT_TRUE(WriteNpz(path, arrays).ok());
  return path;
}

// The real PneumoniaMNIST when the checkout has ../shared/data, otherwise
// the synthetic stand-in.
inline std::string DataPath(const std::string& scratch) {
  if (const char* source = std::getenv("FEDMI_SOURCE_DIR")) {
    std::string real = absl::StrCat(source, "/../shared/data/pneumoniamnist.npz");
    if (access(real.c_str(), R_OK) == 0) return real;
  }
  return WriteSyntheticNpz(scratch + "/synthetic.npz", 7);
}

// A provisioned project in a scratch folder: a CA, the coordinator's kit
// (for 127.0.0.1) and an administrator "admin-1"; Add() issues more parties.
class TestProject {
 public:
  explicit TestProject(const std::string& dir) : project_(Create(dir + "/pki")) {}
  void Add(const std::string& name, PartyRole role, IssueOptions options = {}) {
    EXPECT_THAT(project_.Add(name, role, options), IsOk()) << name;
  }
  std::string KitFile(const std::string& party, const std::string& file) const {
    return project_.KitFile(party, file);
  }
  TransportOptions Transport(const std::string& party) const { return project_.Transport(party); }
  std::vector<std::string> Flags(const std::string& party) const {
    return project_.TransportFlags(party);
  }
  std::string FlagString(const std::string& party) const {
    std::string out;
    for (const auto& flag : Flags(party)) absl::StrAppend(&out, " ", flag);
    return out;
  }
  const std::string& dir() const { return project_.dir(); }
  const cli::LocalProject& project() const { return project_; }

 private:
  static cli::LocalProject Create(const std::string& dir) {
    auto project = cli::LocalProject::Create(dir, "it", "admin-1");
    EXPECT_THAT(project, IsOk());
    return project.ok() ? *std::move(project) : cli::LocalProject::Open(dir, "admin-1");
  }
  cli::LocalProject project_;
};

// A TLS channel from raw PEMs, bypassing the local checks MakeChannel makes,
// so tests can present certificates a real party would refuse to use.
inline std::shared_ptr<grpc::Channel> RawTlsChannel(const std::string& address,
                                                    const std::string& ca_pem,
                                                    const std::string& key_pem,
                                                    const std::string& cert_pem) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs = {{key_pem, cert_pem}};
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(ca_pem, pairs));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  return grpc::CreateChannel(address, grpc::experimental::TlsCredentials(options));
}

inline std::shared_ptr<grpc::Channel> PartyChannel(const std::string& address,
                                                   const TestProject* project,
                                                   const std::string& party) {
  TransportOptions transport;
  if (project != nullptr) {
    transport = project->Transport(party);
  } else {
    transport.insecure = true;
  }
  auto channel = MakeChannel(address, transport);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return *channel;
}

// A coordinator process on a free loopback port, its files in `dir`.
class CoordinatorProcess {
 public:
  // `listen` may name a fixed port, to restart on the port sites know.
  // Without a project it runs --insecure. `env` entries (NAME=value) are set
  // for the process alone.
  CoordinatorProcess(const std::string& dir, const TestProject* project,
                     const std::string& listen = "127.0.0.1:0",
                     const std::string& log_name = "coordinator.log",
                     const std::vector<std::string>& env = {}) {
    cli::CoordinatorOptions options;
    options.listen = listen;
    options.port_file = dir + "/port";
    options.db_path = dir + "/state/coordinator.db";
    options.log_path = dir + "/" + log_name;
    options.env = env;
    auto started = cli::LocalCoordinator::Start(
        project == nullptr ? cli::LocalProject::Insecure() : project->project(), options);
    EXPECT_THAT(started, IsOk());
    if (started.ok()) coordinator_ = *std::move(started);
  }
  const std::string& address() const { return coordinator_->address(); }
  cli::AdminClient& admin() { return coordinator_->admin(); }
  cli::ChildProcess& process() { return coordinator_->process(); }

 private:
  std::unique_ptr<cli::LocalCoordinator> coordinator_;
};

// A hand-driven site: speaks the wire protocol directly, so it can send
// updates a real client never would.
class RawSite {
 public:
  // Says hello as `name` over `channel` (whose certificate may name
  // another party: that is how impersonation is tested).
  RawSite(std::shared_ptr<grpc::Channel> channel, const std::string& name)
      : name_(name), channel_(std::move(channel)) {
    stub_ = v1::Federation::NewStub(channel_);
    stream_ = stub_->Connect(&context_);
    v1::SiteMessage hello;
    hello.mutable_hello()->set_site(name);
    stream_->Write(hello);
  }
  // The status the coordinator ended the control stream with.
  grpc::Status Finish() {
    v1::CoordinatorMessage message;
    grpc::Status closing;
    while (stream_->Read(&message)) {
      if (message.kind_case() == v1::CoordinatorMessage::kClosing) {
        closing = grpc::Status(static_cast<grpc::StatusCode>(message.closing().code()),
                               message.closing().reason());
      }
    }
    finished_ = true;
    grpc::Status status = stream_->Finish();
    return closing.ok() ? status : closing;
  }
  ~RawSite() {
    if (finished_) return;
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
  // Streams `chunks` as an update, however malformed.
  absl::Status UploadChunks(const v1::UpdateMetadata& metadata,
                            const std::vector<v1::TensorChunk>& chunks) {
    grpc::ClientContext context;
    v1::UploadReceipt receipt;
    auto writer = stub_->UploadUpdate(&context, &receipt);
    v1::UploadMessage message;
    *message.mutable_metadata() = metadata;
    if (writer->Write(message)) {
      for (const auto& chunk : chunks) {
        *message.mutable_chunk() = chunk;
        if (!writer->Write(message)) break;
      }
    }
    writer->WritesDone();
    return FromGrpcStatus(writer->Finish());
  }
  // Sends any message on the control stream (as a misbehaving site would).
  bool Send(const v1::SiteMessage& message) { return stream_->Write(message); }
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
  bool finished_ = false;
};

// A fedmi-client process for `options.name` (already issued a kit in
// `project`); the harness's flags, with the test failing if it cannot start.
inline std::unique_ptr<cli::ChildProcess> StartSite(const TestProject& project,
                                                    const std::string& address,
                                                    const cli::SiteOptions& options) {
  auto site = cli::StartSite(project.project(), address, options);
  EXPECT_THAT(site, IsOk()) << options.name;
  return site.ok() ? *std::move(site) : nullptr;
}

// A fedmi-client process for `name` (issued into `project` first), with no
// data: it serves the synthetic benchmark model. `env` entries (NAME=value)
// are set for it alone.
inline std::unique_ptr<cli::ChildProcess> StartSyntheticSite(TestProject& project,
                                                             const std::string& address,
                                                             const std::string& name,
                                                             const std::string& log_dir,
                                                             std::vector<std::string> env = {}) {
  project.Add(name, PartyRole::kSite);
  cli::SiteOptions options;
  options.name = name;
  options.log_path = absl::StrCat(log_dir, "/", name, ".log");
  options.env = std::move(env);
  return StartSite(project, address, options);
}

// A run of the synthetic benchmark model (no data, no training).
inline v1::RunSpec SyntheticSpec(int64_t params, int rounds, int min_sites) {
  v1::RunSpec spec;
  spec.set_model("synthetic");
  spec.set_synthetic_params(params);
  spec.set_rounds(rounds);
  spec.set_min_sites(min_sites);
  return spec;
}

// Follows the run to its end; its last status.
inline v1::RunStatus WatchToEnd(cli::AdminClient& admin, int64_t run) {
  auto last = cli::WatchRunToEnd(admin, run);
  EXPECT_THAT(last, IsOk());
  return last.ok() ? *std::move(last) : v1::RunStatus();
}

inline TensorBundle FloatBundle(const std::string& name, std::vector<float> values) {
  TensorBundle bundle;
  bundle.specs.push_back(TensorSpec{name, DType::kFloat32, {static_cast<int64_t>(values.size())}});
  bundle.body.resize(values.size() * sizeof(float));
  std::memcpy(bundle.body.data(), values.data(), bundle.body.size());
  return bundle;
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_INTEGRATION_PROCESS_FIXTURE_H_
