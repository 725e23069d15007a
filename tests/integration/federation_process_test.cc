// End-to-end tests: the real fedmi-coordinator, fedmi-client and fedmi
// binaries as separate processes talking gRPC over loopback.
#include <grpcpp/generic/generic_stub.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/crypto/sha256.h"
#include "common/tensor/synthetic_model.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TEST(FederationProcessTest, ThreeSitesTrainOverLoopbackAndReportTestMetrics) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  const std::string json_out = scratch.path() + "/summary.json";
  CommandOutput out = RunCommand(absl::StrCat(
      Binary("fedmi"), " sim --sites 3 --rounds 2 --partition dirichlet --alpha 0.5 --seed 1",
      " --data ", data, " --work-dir ", scratch.path(), "/sim --json-out ", json_out, " --json"));
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

// SCAFFOLD's control variates travel in the update, so with secure
// aggregation they are masked, clamped to the clip and summed with the
// weights; in weight units they pass the clip and the run still learns.
// Four sites: the sim's site policy wants 3 secure-aggregation peers.
TEST(FederationProcessTest, ScaffoldTrainsThroughSecureAggregation) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  CommandOutput out = RunCommand(absl::StrCat(
      Binary("fedmi"), " sim --sites 4 --rounds 2 --partition dirichlet --alpha 0.5 --seed 1",
      " --scaffold --optimizer sgd --lr 0.05 --secure-aggregation on --threads 1 --data ", data,
      " --work-dir ", scratch.path(), "/sim --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  EXPECT_THAT(out.stdout_text, HasSubstr("optimization: SCAFFOLD"));
  nlohmann::json summary = nlohmann::json::parse(LastLine(out.stdout_text));
  EXPECT_TRUE(summary["secure_aggregation"].get<bool>());
  EXPECT_GT(summary["test"]["auc"].get<double>(), 0.8);
}

TEST(FederationProcessTest, BadInputGetsClearErrorsAndCoordinatorKeepsServing) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  project.Add("site-1", PartyRole::kSite);
  CoordinatorProcess coordinator(scratch.path(), &project);

  // A status request for an unknown run.
  auto unknown = coordinator.admin().GetRun(424242);
  EXPECT_THAT(unknown, StatusIs(absl::StatusCode::kNotFound, HasSubstr("424242")));

  // A client whose data file is missing exits 1 and names the file.
  CommandOutput missing = RunCommand(absl::StrCat(
      Binary("fedmi-client"), project.FlagString("site-1"), " --coordinator ",
      coordinator.address(), " --site site-1 --data ", scratch.path(), "/nope.npz 2>&1"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.stdout_text, HasSubstr("nope.npz"));
  EXPECT_THAT(missing.stdout_text, HasSubstr("does not exist"));

  // A corrupt npz.
  const std::string corrupt = scratch.path() + "/corrupt.npz";
  std::ofstream(corrupt) << "this is not a zip archive";
  CommandOutput bad = RunCommand(absl::StrCat(Binary("fedmi-client"), project.FlagString("site-1"),
                                              " --coordinator ", coordinator.address(),
                                              " --site site-1 --data ", corrupt, " 2>&1"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.stdout_text, HasSubstr("corrupt.npz"));

  // Usage errors exit 2.
  CommandOutput usage = RunCommand(absl::StrCat(Binary("fedmi"), " run status 2>&1"));
  EXPECT_EQ(usage.exit_code, 2);

  EXPECT_TRUE(coordinator.process().Running());
  EXPECT_THAT(coordinator.admin().ListSites(), IsOk());
}

TEST(FederationProcessTest, MismatchedUpdateIsRefusedByNameAndShape) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  project.Add("site-1", PartyRole::kSite);
  CoordinatorProcess coordinator(scratch.path(), &project);
  RawSite site(PartyChannel(coordinator.address(), &project, "site-1"), "site-1");
  ASSERT_THAT(coordinator.admin().WaitForSites(1, absl::Seconds(20)), IsOk());

  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator.admin().StartRun(SyntheticSpec(4, 1, 1)));

  v1::CoordinatorMessage init = site.NextTask();
  ASSERT_EQ(init.kind_case(), v1::CoordinatorMessage::kInit);
  ASSERT_THAT(site.Upload(run, 0, 0, FloatBundle("weights", {1, 2, 3, 4})), IsOk());
  v1::CoordinatorMessage train = site.NextTask();
  ASSERT_EQ(train.kind_case(), v1::CoordinatorMessage::kTrain);
  EXPECT_EQ(train.train().round(), 1);

  EXPECT_THAT(site.Upload(run, 1, 10, FloatBundle("weights", {1, 2, 3})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor 'weights' has shape [3], expected [4]")));
  EXPECT_THAT(
      site.Upload(run, 1, 10, FloatBundle("bias", {1, 2, 3, 4})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("named 'bias', expected 'weights'")));
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

  // Each refusal is in the audit log, with the site and the reason.
  ASSERT_OK_AND_ASSIGN(audit::ExportedLog log, coordinator.admin().FetchAuditLog());
  std::vector<std::string> refusals;
  for (const auto& entry : log.entries) {
    if (entry.action() == "update.refused" && entry.actor() == "site-1") {
      refusals.push_back(entry.detail_json());
    }
  }
  ASSERT_EQ(refusals.size(), 4u);
  EXPECT_THAT(refusals[0], HasSubstr("has shape [3], expected [4]"));
  EXPECT_THAT(refusals[2], HasSubstr("FAILED_PRECONDITION"));
}

TEST(FederationProcessTest, BoundaryInputIsRefusedPreciselyAuditedAndTheRoundGoesOn) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  project.Add("site-1", PartyRole::kSite);
  project.Add("site-2", PartyRole::kSite);
  CoordinatorProcess coordinator(scratch.path(), &project);
  RawSite bad(PartyChannel(coordinator.address(), &project, "site-1"), "site-1");
  RawSite good(PartyChannel(coordinator.address(), &project, "site-2"), "site-2");
  ASSERT_THAT(coordinator.admin().WaitForSites(2, absl::Seconds(20)), IsOk());
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator.admin().StartRun(SyntheticSpec(4, 1, 1)));
  ASSERT_EQ(bad.NextTask().kind_case(), v1::CoordinatorMessage::kInit);
  ASSERT_THAT(bad.Upload(run, 0, 0, FloatBundle("weights", {1, 2, 3, 4})), IsOk());
  ASSERT_EQ(bad.NextTask().kind_case(), v1::CoordinatorMessage::kTrain);
  ASSERT_EQ(good.NextTask().kind_case(), v1::CoordinatorMessage::kTrain);

  ASSERT_THAT(good.Upload(run, 1, 10, FloatBundle("weights", {2, 2, 2, 2})), IsOk());
  EXPECT_THAT(good.Upload(run, 1, 10, FloatBundle("weights", {3, 3, 3, 3})),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already sent its update")));

  v1::UpdateMetadata metadata;
  metadata.set_run_id(run);
  metadata.set_round(1);
  metadata.set_site("site-1");
  metadata.set_examples(10);
  const TensorBundle honest = FloatBundle("weights", {1, 1, 1, 1});
  v1::TensorChunk header;
  for (const auto& spec : honest.specs) {
    v1::TensorSpec* out = header.mutable_header()->add_tensors();
    out->set_name(spec.name);
    out->set_dtype(v1::DTYPE_FLOAT32);
    for (int64_t dim : spec.shape) out->add_shape(dim);
  }
  header.mutable_header()->set_total_bytes(16);
  header.mutable_header()->set_sha256(
      Sha256::Digest(absl::string_view(honest.body.data(), honest.body.size())));
  v1::TensorChunk half;
  half.set_data(std::string(honest.body.data(), 8));
  v1::TensorChunk whole;
  whole.set_data(std::string(honest.body.data(), honest.body.size()));
  // Cut off after half the body.
  EXPECT_THAT(bad.UploadChunks(metadata, {header, half}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("8 of 16")));
  // Body before its header.
  EXPECT_THAT(bad.UploadChunks(metadata, {whole, header}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header")));
  // A payload the header does not describe.
  EXPECT_THAT(bad.UploadChunks(metadata, {header, whole, half}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16")));
  // A dtype other than the model's, and an update for a run that does not exist.
  TensorBundle ints;
  ints.specs.push_back(TensorSpec{"weights", DType::kInt32, {4}});
  ints.body.assign(16, '\0');
  EXPECT_THAT(bad.Upload(run, 1, 10, ints),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor 'weights' has dtype int32, expected float32")));
  EXPECT_THAT(bad.Upload(run + 41, 1, 10, honest),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat("run ", run + 41, " does not exist"))));
  // NaN: refused by name, and site-1 leaves the round at once.
  const float nan = std::nanf("");
  EXPECT_THAT(bad.Upload(run, 1, 10, FloatBundle("weights", {1, nan, 3, 4})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nan in tensor 'weights' at element 1")));

  // A site whose certificate is valid but that never said hello.
  project.Add("site-3", PartyRole::kSite);
  {
    auto stranger =
        v1::Federation::NewStub(PartyChannel(coordinator.address(), &project, "site-3"));
    grpc::ClientContext context;
    v1::UploadReceipt receipt;
    auto writer = stranger->UploadUpdate(&context, &receipt);
    v1::UpdateMetadata as_stranger = metadata;
    as_stranger.set_site("site-3");
    EXPECT_THAT(UploadBundle(writer.get(), as_stranger, honest),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("site 'site-3' is not connected")));
  }
  // Bytes that are not a protobuf message at all.
  {
    grpc::GenericStub generic(PartyChannel(coordinator.address(), &project, "site-1"));
    grpc::ClientContext context;
    grpc::CompletionQueue queue;
    auto call = generic.PrepareCall(&context, "/fedmi.v1.Federation/UploadUpdate", &queue);
    void* tag = nullptr;
    bool ok = false;
    call->StartCall(reinterpret_cast<void*>(1));
    queue.Next(&tag, &ok);
    grpc::Slice garbage("\xff\xff\xff\xff not a protobuf", 21);
    call->Write(grpc::ByteBuffer(&garbage, 1), reinterpret_cast<void*>(2));
    queue.Next(&tag, &ok);
    call->WritesDone(reinterpret_cast<void*>(3));
    queue.Next(&tag, &ok);
    grpc::ByteBuffer reply;
    call->Read(&reply, reinterpret_cast<void*>(4));
    queue.Next(&tag, &ok);
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    queue.Next(&tag, &ok);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message(), "an upload must start with its metadata");
    queue.Shutdown();
    while (queue.Next(&tag, &ok)) {
    }
  }

  // The round committed with site-2's update alone.
  ASSERT_EQ(good.NextTask().kind_case(), v1::CoordinatorMessage::kEval);
  int32_t round = 0;
  ASSERT_OK_AND_ASSIGN(TensorBundle global, coordinator.admin().ExportModel(run, -1, &round));
  EXPECT_EQ(round, 1);
  EXPECT_EQ(FloatsOf(global), (std::vector<float>{2, 2, 2, 2}));
  EXPECT_TRUE(coordinator.process().Running());

  ASSERT_OK_AND_ASSIGN(audit::ExportedLog log, coordinator.admin().FetchAuditLog());
  std::vector<std::string> refused;
  for (const auto& entry : log.entries) {
    if (entry.action() == "update.refused")
      refused.push_back(entry.actor() + " " + entry.detail_json());
  }
  ASSERT_EQ(refused.size(), 9u);
  EXPECT_THAT(refused[0], HasSubstr("site-2"));
  EXPECT_THAT(refused[0], HasSubstr("ALREADY_EXISTS"));
  EXPECT_THAT(refused[1], HasSubstr("DATA_LOSS"));
  EXPECT_THAT(refused[4], HasSubstr("dtype int32"));
  EXPECT_THAT(refused[5], HasSubstr("NOT_FOUND"));
  EXPECT_THAT(refused[6], HasSubstr("nan in tensor"));
  EXPECT_THAT(refused[7], HasSubstr("site-3"));
  EXPECT_THAT(refused[7], HasSubstr("not connected"));
  EXPECT_THAT(refused[8], HasSubstr("site-1"));
  EXPECT_THAT(refused[8], HasSubstr("must start with its metadata"));
}

// Each round's model is FedAvg of the previous one, so a final model equal
// to `rounds` applications proves no committed round was lost or applied
// twice across the crash.
TEST(FederationProcessTest, RunSurvivesCoordinatorKillAndSitesReconnect) {
  ScratchDir scratch;
  constexpr int kRounds = 60;
  constexpr int64_t kParams = 200000;
  TestProject project(scratch.path());
  auto coordinator = std::make_unique<CoordinatorProcess>(scratch.path(), &project);
  const std::string address = coordinator->address();
  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (int k = 1; k <= 2; ++k) {
    sites.push_back(StartSyntheticSite(project, address, absl::StrCat("site-", k), scratch.path()));
    ASSERT_NE(sites.back(), nullptr);
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

  coordinator = std::make_unique<CoordinatorProcess>(scratch.path(), &project, address,
                                                     "coordinator-restarted.log");
  ASSERT_EQ(coordinator->address(), address);
  const v1::RunStatus final_status = WatchToEnd(coordinator->admin(), run);
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
  // The breakdown is there, from the coordinator's and the sites' /metrics:
  // every phase listed, and time spent where every round must spend some.
  EXPECT_GT(summary["coordinator_peak_rss_bytes"].get<int64_t>(), 0);
  EXPECT_GT(summary["site_peak_rss_bytes"].get<int64_t>(), 0);
  const nlohmann::json& coordinator = summary["coordinator_phase_seconds_per_round"];
  for (const char* phase : {"receive", "hash", "check", "spool", "fold", "commit", "model_send"}) {
    ASSERT_TRUE(coordinator.contains(phase)) << phase << " in " << coordinator.dump();
  }
  EXPECT_GT(coordinator["fold"].get<double>(), 0);
  const nlohmann::json& site = summary["site_phase_seconds_per_round"];
  for (const char* phase : {"download", "training", "secagg", "upload"}) {
    ASSERT_TRUE(site.contains(phase)) << phase << " in " << site.dump();
  }
  EXPECT_GT(site["download"].get<double>(), 0);
  EXPECT_GT(site["upload"].get<double>(), 0);
  EXPECT_EQ(site["secagg"].get<double>(), 0);
}

}  // namespace
}  // namespace fedmi
