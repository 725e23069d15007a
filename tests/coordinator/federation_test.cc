// Drives Federation and, through it, RoundManager without sockets: sites are
// recording SiteChannels, uploads are bundle files written into the spool
// directory, time is a FakeClock.
#include "coordinator/federation.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/tensor/tensor_codec.h"
#include "coordinator/model_store.h"
#include "coordinator/round_manager.h"
#include "coordinator/storage.h"
#include "tests/coordinator/federation_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// --- The whole story ------------------------------------------------------------

TEST_F(FederationTest, FullRunAggregatesWithFedAvgEvaluatesAndFinishes) {
  const int64_t run = StartRun(Spec(/*rounds=*/2, /*min_sites=*/2));
  EXPECT_EQ(Status(run).state(), "running");
  EXPECT_EQ(Status(run).phase(), "waiting-for-sites");

  Connect("site-a");
  EXPECT_THAT(Channel("site-a").Of(Kind::kWelcome), SizeIs(1));
  EXPECT_THAT(Channel("site-a").Of(Kind::kInit), IsEmpty()) << "min_sites is 2";
  Connect("site-b");

  // Round 0: the first site by name builds the initial model.
  ASSERT_THAT(Channel("site-a").Of(Kind::kInit), SizeIs(1));
  EXPECT_EQ(Channel("site-a").Of(Kind::kInit)[0].init().run_id(), run);
  EXPECT_EQ(Channel("site-a").Of(Kind::kInit)[0].init().spec().rounds(), 2);
  EXPECT_THAT(Channel("site-b").Of(Kind::kInit), IsEmpty());
  EXPECT_EQ(Status(run).phase(), "initializing");
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-b"), Metadata("site-b", run, 0, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("waiting for its initial model from site 'site-a'")));
  ASSERT_OK_AND_ASSIGN(
      ExpectedUpload init,
      federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 0, 1)));
  EXPECT_THAT(init.specs, IsEmpty()) << "the initial model defines the layout";
  EXPECT_TRUE(init.adopted) << "the model store adopts it: its spool file must be durable";
  EXPECT_THAT(init.global_model_path, IsEmpty());

  const TensorBundle initial = Model({0.5f, 0.5f, 0.5f, 0.5f, 0.0f, 0.0f});
  ASSERT_THAT(Upload("site-a", run, 0, initial), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle stored_initial, ReadModel(run, 0));
  EXPECT_EQ(stored_initial.specs, ModelSpecs());
  EXPECT_EQ(stored_initial.body, initial.body);
  EXPECT_THAT(SpoolFileCount(), 0u);

  // Round 1: every site trains from round 0.
  for (const std::string site : {"site-a", "site-b"}) {
    ASSERT_THAT(Channel(site).Of(Kind::kTrain), SizeIs(1)) << site;
    const v1::TrainTask& task = Channel(site).Of(Kind::kTrain)[0].train();
    EXPECT_EQ(task.run_id(), run);
    EXPECT_EQ(task.round(), 1);
    EXPECT_EQ(task.base().run_id(), run);
    EXPECT_EQ(task.base().round(), 0);
    Channel(site).Clear();
  }
  EXPECT_EQ(Status(run).phase(), "training");
  EXPECT_EQ(Status(run).current_round(), 1);
  ASSERT_OK_AND_ASSIGN(
      ExpectedUpload expected,
      federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 1)));
  EXPECT_EQ(expected.specs, ModelSpecs());
  EXPECT_FALSE(expected.adopted);
  EXPECT_THAT(expected.global_model_path, Not(IsEmpty())) << "a plaintext update is scanned";

  // Weighted 1 : 3, so the mean is (x_a + 3 x_b) / 4, exact in float.
  const TensorBundle update_a = Model({1, 2, 3, 4, 5, 6});
  const TensorBundle update_b = Model({5, 6, 7, 8, 9, 10});
  ASSERT_THAT(Upload("site-a", run, 1, update_a, /*examples=*/1), IsOk());
  {
    v1::RunStatus live = Status(run);
    ASSERT_THAT(live.rounds(), SizeIs(1));
    EXPECT_EQ(live.rounds(0).round(), 1);
    EXPECT_EQ(live.rounds(0).state(), "training");
    ASSERT_THAT(live.rounds(0).sites(), SizeIs(2));
    EXPECT_EQ(live.rounds(0).sites(0).site(), "site-a");
    EXPECT_EQ(live.rounds(0).sites(0).state(), "uploaded");
    EXPECT_EQ(live.rounds(0).sites(1).state(), "training");
  }
  EXPECT_THAT(Channel("site-a").Of(Kind::kEval), IsEmpty());
  ASSERT_THAT(Upload("site-b", run, 1, update_b, /*examples=*/3), IsOk());

  ASSERT_OK_AND_ASSIGN(TensorBundle aggregate, ReadModel(run, 1));
  EXPECT_EQ(aggregate.specs, ModelSpecs());
  EXPECT_THAT(FloatsOf(aggregate), ElementsAre(4, 5, 6, 7, 8, 9));
  EXPECT_EQ(Status(run).phase(), "evaluating");

  // Evaluation of round 1 by both sites.
  for (const std::string site : {"site-a", "site-b"}) {
    ASSERT_THAT(Channel(site).Of(Kind::kEval), SizeIs(1)) << site;
    EXPECT_EQ(Channel(site).Of(Kind::kEval)[0].eval().round(), 1);
    EXPECT_EQ(Channel(site).Of(Kind::kEval)[0].eval().model().round(), 1);
    Channel(site).Clear();
  }
  ASSERT_THAT(Report("site-a", run, 1, EvalMetrics(10, 1.0, 0.5, 0.6)), IsOk());
  EXPECT_THAT(Report("site-a", run, 1, EvalMetrics(10, 1.0, 0.5, 0.6)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no open evaluation")));
  // site-b's validation data has one class: its AUC is undefined.
  ASSERT_THAT(Report("site-b", run, 1, EvalMetrics(30, 2.0, 0.9, std::nan(""))), IsOk());

  {
    v1::RunStatus status = Status(run);
    EXPECT_EQ(status.completed_rounds(), 1);
    EXPECT_EQ(status.current_round(), 2);
    ASSERT_GE(status.rounds_size(), 1);
    const v1::RoundStatus& round1 = status.rounds(0);
    EXPECT_EQ(round1.round(), 1);
    EXPECT_EQ(round1.state(), "evaluated");
    EXPECT_EQ(round1.model_sha256(), Sha256Of(aggregate));
    EXPECT_EQ(round1.eval_metrics().examples(), 40);
    EXPECT_DOUBLE_EQ(round1.eval_metrics().loss(), (10 * 1.0 + 30 * 2.0) / 40);
    EXPECT_NEAR(round1.eval_metrics().accuracy(), (10 * 0.5 + 30 * 0.9) / 40, 1e-12);
    EXPECT_DOUBLE_EQ(round1.eval_metrics().auc(), 0.6) << "NaN AUC is left out, not averaged";
    ASSERT_THAT(round1.sites(), SizeIs(2));
    EXPECT_EQ(round1.sites(0).site(), "site-a");
    EXPECT_EQ(round1.sites(0).examples(), 1);
    EXPECT_EQ(round1.sites(0).update_sha256(), Sha256Of(update_a));
    EXPECT_EQ(round1.sites(0).state(), "evaluated");
    EXPECT_DOUBLE_EQ(round1.sites(0).eval_metrics().loss(), 1.0);
    EXPECT_EQ(round1.sites(1).site(), "site-b");
    EXPECT_EQ(round1.sites(1).examples(), 3);
    EXPECT_EQ(round1.sites(1).update_sha256(), Sha256Of(update_b));
  }

  // Round 2 trains from round 1.
  for (const std::string site : {"site-a", "site-b"}) {
    ASSERT_THAT(Channel(site).Of(Kind::kTrain), SizeIs(1)) << site;
    EXPECT_EQ(Channel(site).Of(Kind::kTrain)[0].train().round(), 2);
    EXPECT_EQ(Channel(site).Of(Kind::kTrain)[0].train().base().round(), 1);
  }
  ASSERT_THAT(Upload("site-a", run, 2, Model({2, 2, 2, 2, 2, 2}), 1), IsOk());
  ASSERT_THAT(Upload("site-b", run, 2, Model({4, 4, 4, 4, 4, 4}), 1), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle round2, ReadModel(run, 2));
  EXPECT_THAT(FloatsOf(round2), ElementsAre(3, 3, 3, 3, 3, 3));
  ASSERT_THAT(Report("site-a", run, 2, EvalMetrics(10, 0.5, 0.5, 0.5)), IsOk());
  ASSERT_THAT(Report("site-b", run, 2, EvalMetrics(10, 0.5, 0.5, 0.5)), IsOk());

  v1::RunStatus done = Status(run);
  EXPECT_EQ(done.state(), "done");
  EXPECT_EQ(done.phase(), "finished");
  EXPECT_EQ(done.error(), "");
  EXPECT_EQ(done.completed_rounds(), 2);
  EXPECT_THAT(done.rounds(), SizeIs(2));
  EXPECT_THAT(Channel("site-a").Of(Kind::kCancel), IsEmpty());
  EXPECT_THAT(Channel("site-a").Of(Kind::kTrain), SizeIs(1)) << "no round 3";

  // Latest model, and a finished run takes no more updates.
  v1::ModelRef latest;
  latest.set_run_id(run);
  latest.set_round(-1);
  int32_t latest_round = 0;
  std::string sha256;
  ASSERT_THAT(federation_->ModelPath(latest, &sha256, &latest_round), IsOk());
  EXPECT_EQ(latest_round, 2);
  EXPECT_EQ(sha256, Sha256Of(round2));
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 3, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not active (done)")));
}

TEST_F(FederationTest, RunStartedAfterSitesConnectedInitializesAtOnce) {
  Connect("site-b");
  Connect("site-a");
  const int64_t run = StartRun(Spec(1, 2));
  EXPECT_THAT(Channel("site-a").Of(Kind::kInit), SizeIs(1));
  EXPECT_THAT(Channel("site-b").Of(Kind::kInit), IsEmpty());
  EXPECT_EQ(Status(run).phase(), "initializing");
}

TEST_F(FederationTest, ListSitesReportsConnections) {
  Connect("site-a");
  Connect("site-b");
  Disconnect("site-b");
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, federation_->ListSites());
  ASSERT_THAT(sites, SizeIs(2));
  EXPECT_EQ(sites[0].site(), "site-a");
  EXPECT_TRUE(sites[0].connected());
  EXPECT_EQ(sites[0].train_examples(), 100);
  EXPECT_EQ(sites[1].site(), "site-b");
  EXPECT_FALSE(sites[1].connected());
}

// --- Update layout ---------------------------------------------------------------

TEST_F(FederationTest, BeginUploadSpecsMakeTheStreamReaderRefuseAnotherLayout) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a"});
  ASSERT_OK_AND_ASSIGN(
      ExpectedUpload expected,
      federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 5)));
  ASSERT_EQ(expected.specs, ModelSpecs());

  // As the gRPC adapter reads an upload: the header is checked against the
  // specs before a body byte is accepted.
  const TensorBundle wrong =
      FloatBundle({{"fc.weight", DType::kFloat32, {2, 3}}, {"fc.bias", DType::kFloat32, {2}}},
                  {1, 2, 3, 4, 5, 6, 7, 8});
  ASSERT_EQ(wrong.body.size(), wrong.ExpectedBodyBytes());
  std::vector<v1::TensorChunk> chunks;
  ASSERT_THAT(StreamBundle(wrong,
                           [&](const v1::TensorChunk& chunk) {
                             chunks.push_back(chunk);
                             return true;
                           }),
              IsOk());
  std::vector<char> body;
  MemoryBodySink sink(&body);
  BundleStreamReader::Options options;
  options.expected = &expected.specs;
  options.what = "update";
  BundleStreamReader reader(options, &sink);
  EXPECT_THAT(reader.Add(chunks[0]),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor 'fc.weight' has shape [2,3], expected [2,2]")));

  // Nothing reached the run: the site can still upload a correct update.
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1}), 5), IsOk());
  EXPECT_EQ(Status(run).phase(), "evaluating");
}

TEST_F(FederationTest, CompleteUploadWithAnotherLayoutIsRefusedAndTheRoundGoesOn) {
  const int64_t run = StartTraining(Spec(2, 1), {"site-a", "site-b"});
  // Same byte count, different shape: only the spec check can catch it.
  const TensorBundle wrong = FloatBundle(
      {{"fc.weight", DType::kFloat32, {4}}, {"fc.bias", DType::kFloat32, {2}}}, {1, 2, 3, 4, 5, 6});
  ASSERT_EQ(wrong.body.size(), wrong.ExpectedBodyBytes());
  ASSERT_OK_AND_ASSIGN(ReceivedUpdate update, Spool(Metadata("site-b", run, 1, 2), wrong));
  const std::string path = update.path;
  EXPECT_THAT(federation_->CompleteUpload(SiteCaller("site-b"), std::move(update)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor 'fc.weight' has shape [4], expected [2,2]")));
  EXPECT_FALSE(std::filesystem::exists(path)) << "a refused update is deleted";

  // Nothing was folded into the running sum, so the round goes on and both
  // sites can still send correct updates.
  EXPECT_EQ(Status(run).state(), "running");
  EXPECT_THAT(Channel("site-a").Of(Kind::kCancel), IsEmpty());
  ASSERT_THAT(Upload("site-b", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_EQ(Status(run).phase(), "evaluating");
}

TEST_F(FederationTest, NonFiniteOrOversizedUpdatesAreRefusedBeforeAggregation) {
  v1::RunSpec spec = Spec(1, 1);
  spec.set_max_update_norm(10);
  const int64_t run = StartTraining(spec, {"site-a", "site-b", "site-c"});
  const float nan = std::nanf("");
  EXPECT_THAT(Upload("site-b", run, 1, Model({1, 1, 1, nan, 1, 1}), 5),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("site 'site-b'"), HasSubstr("tensor 'fc.weight'"),
                             HasSubstr("element 3"))));
  // sqrt(6 * 5^2) = 12.2 > 10 against the all-zero global model.
  EXPECT_THAT(Upload("site-c", run, 1, Model({5, 5, 5, 5, 5, 5}), 5),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("site 'site-c' changes the model by 12.24"),
                             HasSubstr("bound of 10"))));
  EXPECT_EQ(SpoolFileCount(), 0u);
  // Both are out of this round at once; the honest site's update is the sum.
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-b"), Metadata("site-b", run, 1, 5)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dropped")));
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 2, 3, 4, 4, 3}), 5), IsOk());
  EXPECT_EQ(Status(run).phase(), "evaluating");
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadModel(run, 1));
  EXPECT_EQ(FloatsOf(model), (std::vector<float>{1, 2, 3, 4, 4, 3}));
}

TEST_F(FederationTest, ExampleCountsBeyondWhatTheSiteDeclaredAreRefused) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a"});
  // Connect() declares 100 training examples.
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1}), 101),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("example count 101 is more than site 'site-a' declared in its "
                                 "hello (100)")));
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1}), -3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be positive")));
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1}), 100), IsOk());
}

TEST_F(FederationTest, BelowQuorumAtTheDeadlineTheRoundIsRetriedThenTheRunFails) {
  v1::RunSpec spec = Spec(/*rounds=*/1, /*min_sites=*/2);
  spec.set_max_round_retries(1);
  const int64_t run = StartTraining(spec, {"site-a", "site-b"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  clock_.Advance(absl::Seconds(61));
  federation_->Tick();
  // First failure: the round is abandoned and opened again.
  EXPECT_EQ(Status(run).state(), "running");
  ASSERT_THAT(Channel("site-a").Of(Kind::kCancel), SizeIs(1));
  EXPECT_EQ(Channel("site-a").Of(Kind::kCancel)[0].cancel().round(), 1);
  EXPECT_THAT(Channel("site-a").Of(Kind::kTrain), SizeIs(2)) << "the retry's task";
  // The update of the abandoned attempt does not count: site-a sends again.
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  clock_.Advance(absl::Seconds(61));
  federation_->Tick();
  const v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(), AllOf(HasSubstr("round 1: at most 1 of the 2 required sites"),
                                    HasSubstr("site-b dropped: timed out after 60 s")));
}

TEST_F(FederationTest, InitialModelWithoutTensorsIsRefused) {
  Connect("site-a");
  const int64_t run = StartRun(Spec(1, 1));
  EXPECT_THAT(Upload("site-a", run, 0, TensorBundle()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no tensors")));
  EXPECT_EQ(Status(run).phase(), "initializing");
  EXPECT_THAT(Upload("site-a", run, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
}

TEST_F(FederationTest, InitialModelThatFedAvgCannotAggregateIsRefused) {
  Connect("site-a");
  const int64_t run = StartRun(Spec(1, 1));
  TensorBundle initial;
  initial.specs = {{"fc.weight", DType::kFloat32, {2}}, {"bn.steps", DType::kInt64, {1}}};
  initial.body.resize(initial.ExpectedBodyBytes());
  EXPECT_THAT(Upload("site-a", run, 0, initial),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("fedavg cannot aggregate tensor 'bn.steps' of dtype int64")));
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "running");
  EXPECT_EQ(status.phase(), "initializing");
  EXPECT_THAT(Upload("site-a", run, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  EXPECT_EQ(Status(run).phase(), "training");
}

// --- Upload checks ---------------------------------------------------------------

TEST_F(FederationTest, SecondUploadOfASiteInARoundIsAlreadyExists) {
  const int64_t run = StartTraining(Spec(1, 2), {"site-a", "site-b"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 1)),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("site 'site-a' already sent its update for round 1")));
  // Also when the transport skips BeginUpload: the file is dropped.
  ASSERT_OK_AND_ASSIGN(ReceivedUpdate again,
                       Spool(Metadata("site-a", run, 1, 1), Model({9, 9, 9, 9, 9, 9})));
  const std::string path = again.path;
  EXPECT_THAT(
      federation_->CompleteUpload(SiteCaller("site-a"), std::move(again)),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already sent its update for round 1")));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(Status(run).state(), "running");

  ASSERT_THAT(Upload("site-b", run, 1, Model({3, 3, 3, 3, 3, 3})), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle aggregate, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(aggregate), ElementsAre(2, 2, 2, 2, 2, 2)) << "the duplicate was not folded";
}

TEST_F(FederationTest, UpdateForAnotherRoundIsFailedPrecondition) {
  const int64_t run = StartTraining(Spec(3, 1), {"site-a"});
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 2, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("update is for round 2 but run 1 is in round 1")));
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 0, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("round 0")));
  // During evaluation no update is taken at all.
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("phase evaluating")));
}

TEST_F(FederationTest, UpdateFromASiteNotSelectedIsPermissionDenied) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a"});
  Connect("site-late");  // after round 1 opened
  EXPECT_THAT(Channel("site-late").Of(Kind::kTrain), IsEmpty());
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-late"), Metadata("site-late", run, 1, 1)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-late' is not selected for round 1 of run 1")));
}

TEST_F(FederationTest, ZeroOrNegativeExamplesIsInvalidArgument) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a"});
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("example count must be positive, got 0")));
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1}), -4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got -4")));
  EXPECT_EQ(Status(run).phase(), "training");
}

TEST_F(FederationTest, UploadIdentityAndRunChecks) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a", "site-b"});
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-b"), Metadata("site-a", run, 1, 1)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("site 'site-b' cannot upload on behalf of 'site-a'")));
  EXPECT_THAT(
      federation_->BeginUpload(SiteCaller("site-x"), Metadata("site-x", run, 1, 1)),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("site 'site-x' is not connected")));
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-a"), Metadata("site-a", 42, 1, 1)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 42")));
  ASSERT_OK_AND_ASSIGN(ReceivedUpdate update,
                       Spool(Metadata("site-a", 42, 1, 1), Model({1, 1, 1, 1, 1, 1})));
  const std::string path = update.path;
  EXPECT_THAT(federation_->CompleteUpload(SiteCaller("site-a"), std::move(update)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 42")));
  EXPECT_FALSE(std::filesystem::exists(path));
}

// --- Sessions ----------------------------------------------------------------------

TEST_F(FederationTest, InvalidSiteNamesAreRefused) {
  const std::vector<std::string> names = {"bad name",           "a/b",        "../etc", "",
                                          std::string(65, 'x'), "caf\xc3\xa9"};
  for (const std::string& name : names) {
    auto channel = std::make_shared<RecordingChannel>();
    EXPECT_THAT(federation_->SiteConnected(SiteCaller(name), v1::Hello(), channel),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site name")))
        << "'" << name << "'";
    EXPECT_THAT(channel->messages(), IsEmpty());
  }
  EXPECT_THAT(ValidatePartyName("Site_1.a-b", "site name"), IsOk());
  EXPECT_THAT(ValidatePartyName(std::string(64, 'x'), "site name"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, federation_->ListSites());
  EXPECT_THAT(sites, IsEmpty());
}

TEST_F(FederationTest, HelloInAnotherSitesNameIsPermissionDenied) {
  v1::Hello hello;
  hello.set_site("site-b");
  EXPECT_THAT(
      federation_->SiteConnected(SiteCaller("site-a"), hello, std::make_shared<RecordingChannel>()),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("says hello as 'site-b'")));
}

TEST_F(FederationTest, ReconnectReplacesTheOldSession) {
  auto first = Connect("site-a");
  const uint64_t old_session = sessions_["site-a"];
  auto second = Connect("site-a");
  EXPECT_TRUE(first->closed());
  EXPECT_THAT(first->close_status(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("newer")));
  EXPECT_FALSE(second->closed());
  EXPECT_NE(sessions_["site-a"], old_session);
  // The old stream's late disconnect must not end the new session.
  federation_->SiteDisconnected("site-a", old_session);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteInfo> sites, federation_->ListSites());
  ASSERT_THAT(sites, SizeIs(1));
  EXPECT_TRUE(sites[0].connected());
}

TEST_F(FederationTest, ReconnectDuringTrainingDropsTheSiteFromTheRound) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a", "site-b"});
  auto old_channel = channels_.at("site-b");
  Connect("site-b");
  EXPECT_TRUE(old_channel->closed());
  EXPECT_THAT(Channel("site-b").Of(Kind::kTrain), IsEmpty()) << "the round is already open";
  // Its task went with the old stream, and the refusal says so.
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-b"), Metadata("site-b", run, 1, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("site 'site-b' was dropped from round 1 of run 1 (replaced by "
                                 "a newer connection)")));
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(run));
  ASSERT_THAT(rows, SizeIs(2));
  EXPECT_EQ(rows[1].site, "site-b");
  EXPECT_EQ(rows[1].state, ParticipationState::kDropped);
  EXPECT_EQ(rows[1].detail, "replaced by a newer connection");
  // The new session takes part in the evaluation.
  EXPECT_THAT(Channel("site-b").Of(Kind::kEval), SizeIs(1));
}

TEST_F(FederationTest, SiteMessagesNeedASession) {
  v1::SiteMessage heartbeat;
  heartbeat.mutable_heartbeat();
  EXPECT_THAT(federation_->OnSiteMessage(SiteCaller("site-a"), heartbeat),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no open session")));
  Connect("site-a");
  EXPECT_THAT(federation_->OnSiteMessage(SiteCaller("site-a"), heartbeat), IsOk());
  EXPECT_THAT(federation_->OnSiteMessage(SiteCaller("site-a"), v1::SiteMessage()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  v1::SiteMessage hello;
  hello.mutable_hello()->set_site("site-a");
  EXPECT_THAT(federation_->OnSiteMessage(SiteCaller("site-a"), hello),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("hello sent twice")));
  EXPECT_THAT(Report("site-a", 9, 1, EvalMetrics(1, 0, 0, 0)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 9")));
}

TEST_F(FederationTest, EvalReportForAnotherRoundIsFailedPrecondition) {
  const int64_t run = StartTraining(Spec(2, 1), {"site-a"});
  EXPECT_THAT(Report("site-a", run, 1, EvalMetrics(1, 0, 0, 0)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not evaluating round 1")));
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_THAT(Report("site-a", run, 2, EvalMetrics(1, 0, 0, 0)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not evaluating round 2")));
  EXPECT_THAT(Report("site-a", run, 1, EvalMetrics(1, 0, 0, 0)), IsOk());
}

// --- Admin -------------------------------------------------------------------------

TEST_F(FederationTest, GetRunOfAnUnknownRunIsNotFound) {
  EXPECT_THAT(federation_->GetRun(42),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 42 does not exist")));
  v1::ModelRef ref;
  ref.set_run_id(42);
  EXPECT_THAT(federation_->ModelPath(ref),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 42")));
}

TEST_F(FederationTest, ModelPathErrors) {
  const int64_t run = StartRun(Spec(1, 1));
  v1::ModelRef ref;
  ref.set_run_id(run);
  EXPECT_THAT(federation_->ModelPath(ref),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no model yet")));
  Connect("site-a");
  ASSERT_THAT(Upload("site-a", run, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  ref.set_round(5);
  EXPECT_THAT(
      federation_->ModelPath(ref),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no committed round 5 (latest is 0)")));
}

TEST_F(FederationTest, AbortRunCancelsSitesAndCannotBeRepeated) {
  const int64_t run = StartTraining(Spec(3, 2), {"site-a", "site-b"});
  EXPECT_THAT(federation_->AbortRun(SiteCaller("site-a"), run, ""),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("only an admin")));
  ASSERT_THAT(federation_->AbortRun(Admin(), run, "wrong data set"), IsOk());

  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "aborted");
  EXPECT_EQ(status.error(), "wrong data set");
  EXPECT_EQ(status.phase(), "finished");
  for (const std::string site : {"site-a", "site-b"}) {
    ASSERT_THAT(Channel(site).Of(Kind::kCancel), SizeIs(1)) << site;
    EXPECT_EQ(Channel(site).Of(Kind::kCancel)[0].cancel().run_id(), run);
    EXPECT_EQ(Channel(site).Of(Kind::kCancel)[0].cancel().reason(), "wrong data set");
  }
  EXPECT_THAT(
      federation_->AbortRun(Admin(), run, ""),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("run 1 is not active (aborted)")));
  EXPECT_THAT(federation_->AbortRun(Admin(), 99, ""),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 99")));
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("aborted")));
}

TEST_F(FederationTest, AbortWithoutReasonNamesTheAdmin) {
  const int64_t run = StartRun(Spec(1, 1));
  ASSERT_THAT(federation_->AbortRun(Admin(), run, ""), IsOk());
  EXPECT_EQ(Status(run).error(), "aborted by alice");
}

TEST_F(FederationTest, StartRunValidatesTheSpecNamingTheField) {
  struct Case {
    void (*mutate)(v1::RunSpec*);
    const char* message;
  };
  const Case cases[] = {
      {[](v1::RunSpec* s) { s->set_rounds(0); }, "rounds must be between 1 and 100000, got 0"},
      {[](v1::RunSpec* s) { s->set_rounds(100001); }, "rounds"},
      {[](v1::RunSpec* s) { s->set_lr(-1); }, "lr must be a positive number, got -1"},
      {[](v1::RunSpec* s) { s->set_lr(std::nan("")); }, "lr must be a positive number"},
      {[](v1::RunSpec* s) { s->set_optimizer("rmsprop"); }, "optimizer 'rmsprop' is unknown"},
      {[](v1::RunSpec* s) { s->set_strategy("fedprox"); }, "strategy 'fedprox'"},
      {[](v1::RunSpec* s) { s->set_min_sites(-1); }, "min_sites must be at least 1"},
      {[](v1::RunSpec* s) { s->set_max_sites(1); }, "max_sites"},
      {[](v1::RunSpec* s) { s->set_local_epochs(-2); }, "local_epochs"},
      {[](v1::RunSpec* s) { s->set_batch_size(100000); }, "batch_size"},
      {[](v1::RunSpec* s) { s->set_num_classes(1); }, "num_classes must be at least 2"},
      {[](v1::RunSpec* s) { s->set_round_timeout_s(-5); }, "round_timeout_s"},
      {[](v1::RunSpec* s) { s->set_model("synthetic"); }, "synthetic_params"},
  };
  for (const Case& c : cases) {
    v1::RunSpec spec = Spec(2, 2);
    c.mutate(&spec);
    EXPECT_THAT(federation_->StartRun(Admin(), spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << spec.ShortDebugString();
  }
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RunStatus> runs, federation_->ListRuns());
  EXPECT_THAT(runs, IsEmpty()) << "an invalid spec stores nothing";
}

TEST_F(FederationTest, SiteLevelDpIsCompletedAtStartOrRefusedNamingWhy) {
  v1::RunSpec spec = Spec(2, 2);
  spec.mutable_dp()->set_level(v1::DP_LEVEL_SITE);
  spec.mutable_dp()->set_target_epsilon(4);
  EXPECT_THAT(federation_->StartRun(Admin(), spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--expected-sites")))
      << "no site connected: the noise shares cannot be sized";
  v1::RunSpec distributed = spec;
  distributed.mutable_dp()->set_noise_placement(v1::DP_NOISE_DISTRIBUTED);
  EXPECT_THAT(federation_->StartRun(Admin(), distributed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("distributed noise needs secure aggregation")));
  v1::RunSpec median = spec;
  median.set_strategy("median");
  EXPECT_THAT(federation_->StartRun(Admin(), median),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("DP-FedAvg")));
  v1::RunSpec adaptive = distributed;
  adaptive.set_min_sites(3);
  adaptive.set_secure_aggregation(true);
  adaptive.mutable_dp()->set_adaptive_clipping(true);
  EXPECT_THAT(federation_->StartRun(Admin(), adaptive),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("--dp-noise central")));
  v1::RunSpec per_example = spec;
  per_example.set_model("cnn-gn");
  per_example.mutable_dp()->set_level(v1::DP_LEVEL_SAMPLE);
  per_example.mutable_dp()->set_adaptive_clipping(true);
  EXPECT_THAT(federation_->StartRun(Admin(), per_example),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--dp site")));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RunStatus> runs, federation_->ListRuns());
  EXPECT_THAT(runs, IsEmpty());

  spec.mutable_dp()->set_expected_sites(2);
  ASSERT_OK_AND_ASSIGN(int64_t run, federation_->StartRun(Admin(), spec));
  ASSERT_OK_AND_ASSIGN(v1::RunStatus status, federation_->GetRun(run));
  const v1::DpSettings& dp = status.spec().dp();
  EXPECT_EQ(dp.sample_rate(), 1);
  EXPECT_EQ(dp.clip_norm(), 1);
  EXPECT_EQ(dp.noise_placement(), v1::DP_NOISE_CENTRAL);
  EXPECT_EQ(status.spec().max_sites(), 2) << "rounds take no more sites than the denominator";
  EXPECT_NEAR(privacy::EpsilonAfterRounds(dp, 2)->epsilon, 4, 1e-3) << "noise calibrated";
}

TEST_F(FederationTest, SampleLevelDpNeedsABudgetAndAModelWithoutBatchNorm) {
  v1::RunSpec spec = Spec(2, 2);
  spec.mutable_dp()->set_level(v1::DP_LEVEL_SAMPLE);
  EXPECT_THAT(federation_->StartRun(Admin(), spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target epsilon")));
  spec.mutable_dp()->set_target_epsilon(4);
  spec.set_model("cnn");
  EXPECT_THAT(federation_->StartRun(Admin(), spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("BatchNorm"), HasSubstr("cnn-gn"))));
  spec.set_model("cnn-gn");
  spec.mutable_dp()->set_delta(1.5);
  EXPECT_THAT(federation_->StartRun(Admin(), spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta")));
  v1::RunSpec settings_without_level = Spec(2, 2);
  settings_without_level.mutable_dp()->set_target_epsilon(4);
  EXPECT_THAT(federation_->StartRun(Admin(), settings_without_level),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dp level is none")));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RunStatus> runs, federation_->ListRuns());
  EXPECT_THAT(runs, IsEmpty());
}

TEST_F(FederationTest, StartRunFillsDefaultsAndNeedsAnAdmin) {
  v1::RunSpec spec;
  spec.set_rounds(1);
  EXPECT_THAT(federation_->StartRun(SiteCaller("site-a"), spec),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("only an admin")));
  ASSERT_OK_AND_ASSIGN(int64_t run, federation_->StartRun(Admin(), spec));
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.spec().model(), "cnn");
  EXPECT_EQ(status.spec().strategy(), "fedavg");
  EXPECT_EQ(status.spec().optimizer(), "adam");
  EXPECT_EQ(status.spec().min_sites(), 1);
  EXPECT_EQ(status.spec().batch_size(), 64);
  EXPECT_DOUBLE_EQ(status.spec().round_timeout_s(), 3600);
  EXPECT_THAT(status.spec_sha256(), SizeIs(32));
}

// --- Sites that go away ------------------------------------------------------------

TEST_F(FederationTest, SiteDisconnectingMidRoundIsDroppedWhenMinSitesStillMet) {
  const int64_t run = StartTraining(Spec(1, 2), {"site-a", "site-b", "site-c"});
  ASSERT_THAT(Channel("site-c").Of(Kind::kTrain), SizeIs(1));
  Disconnect("site-c");
  EXPECT_EQ(Status(run).state(), "running");
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1}), 1), IsOk());
  ASSERT_THAT(Upload("site-b", run, 1, Model({4, 4, 4, 4, 4, 4}), 2), IsOk());

  ASSERT_OK_AND_ASSIGN(TensorBundle aggregate, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(aggregate), ElementsAre(3, 3, 3, 3, 3, 3));
  EXPECT_THAT(Channel("site-a").Of(Kind::kEval), SizeIs(1));
  ASSERT_THAT(Report("site-a", run, 1, EvalMetrics(5, 1, 1, 1)), IsOk());
  ASSERT_THAT(Report("site-b", run, 1, EvalMetrics(5, 1, 1, 1)), IsOk());

  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "done");
  ASSERT_THAT(status.rounds(), SizeIs(1));
  ASSERT_THAT(status.rounds(0).sites(), SizeIs(3));
  EXPECT_EQ(status.rounds(0).sites(2).site(), "site-c");
  EXPECT_EQ(status.rounds(0).sites(2).state(), "dropped");
  EXPECT_EQ(status.rounds(0).eval_metrics().examples(), 10);
}

TEST_F(FederationTest, SiteDisconnectingBelowMinSitesFailsTheRun) {
  const int64_t run = StartTraining(Spec(2, 2), {"site-a", "site-b"});
  Disconnect("site-b");
  // The quorum is out of reach at once: site-a need not train for nothing.
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(),
              HasSubstr("round 1: at most 1 of the 2 required sites can return an update "
                        "(site-b dropped: disconnected)"));
  EXPECT_THAT(Channel("site-a").Of(Kind::kCancel), SizeIs(1));
  v1::ModelRef ref;
  ref.set_run_id(run);
  ref.set_round(1);
  EXPECT_THAT(federation_->ModelPath(ref),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no committed round 1")));
}

TEST_F(FederationTest, AllSelectedSitesDisconnectingFailsTheRunAtOnce) {
  const int64_t run = StartTraining(Spec(2, 2), {"site-a", "site-b"});
  Disconnect("site-a");
  Disconnect("site-b");
  EXPECT_EQ(Status(run).state(), "failed");
  EXPECT_THAT(Status(run).error(),
              HasSubstr("at most 1 of the 2 required sites can return an update (site-a dropped"));
}

TEST_F(FederationTest, LateReportAboutAnEarlierTaskDoesNotDropTheSite) {
  const int64_t run = StartTraining(Spec(2, 1), {"site-a", "site-b"});
  // site-b's refusal of the initial-model task arrives while round 1 trains.
  v1::SiteMessage stale;
  stale.mutable_refusal()->set_run_id(run);
  stale.mutable_refusal()->set_round(0);
  stale.mutable_refusal()->set_reason("upload rejected");
  ASSERT_THAT(federation_->OnSiteMessage(SiteCaller("site-b"), stale), IsOk());
  EXPECT_EQ(Status(run).state(), "running");
  EXPECT_THAT(Upload("site-b", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  EXPECT_EQ(Status(run).phase(), "evaluating");
}

TEST_F(FederationTest, RefusalAndFailureDropTheSite) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a", "site-b", "site-c"});
  v1::SiteMessage refusal;
  refusal.mutable_refusal()->set_run_id(run);
  refusal.mutable_refusal()->set_round(1);
  refusal.mutable_refusal()->set_reason("policy");
  ASSERT_THAT(federation_->OnSiteMessage(SiteCaller("site-b"), refusal), IsOk());
  v1::SiteMessage failure;
  failure.mutable_failure()->set_run_id(run);
  failure.mutable_failure()->set_round(1);
  failure.mutable_failure()->set_reason("out of memory");
  ASSERT_THAT(federation_->OnSiteMessage(SiteCaller("site-c"), failure), IsOk());
  EXPECT_THAT(federation_->BeginUpload(SiteCaller("site-b"), Metadata("site-b", run, 1, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("was dropped from round 1 of run 1 (policy)")));

  ASSERT_THAT(Upload("site-a", run, 1, Model({2, 2, 2, 2, 2, 2})), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle aggregate, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(aggregate), ElementsAre(2, 2, 2, 2, 2, 2));
  // The commit stores why each site is missing.
  ASSERT_OK_AND_ASSIGN(std::vector<ParticipationRecord> rows, storage_->ListParticipations(run));
  ASSERT_THAT(rows, SizeIs(3));
  EXPECT_EQ(rows[0].site, "site-a");
  EXPECT_EQ(rows[0].state, ParticipationState::kUploaded);
  EXPECT_EQ(rows[1].state, ParticipationState::kRefused);
  EXPECT_EQ(rows[1].detail, "policy");
  EXPECT_EQ(rows[2].state, ParticipationState::kDropped);
  EXPECT_EQ(rows[2].detail, "out of memory");
}

TEST_F(FederationTest, InitSiteDisconnectingHandsTheInitialModelToAnotherSite) {
  Connect("site-a");
  Connect("site-b");
  const int64_t run = StartRun(Spec(1, 1));
  ASSERT_THAT(Channel("site-a").Of(Kind::kInit), SizeIs(1));
  Disconnect("site-a");
  ASSERT_THAT(Channel("site-b").Of(Kind::kInit), SizeIs(1));
  EXPECT_EQ(Status(run).state(), "running");
  EXPECT_THAT(Upload("site-b", run, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
  EXPECT_EQ(Status(run).phase(), "training");
}

TEST_F(FederationTest, MaxSitesSelectsASubsetPerRound) {
  v1::RunSpec spec = Spec(1, 1);
  spec.set_max_sites(2);
  const int64_t run = StartTraining(spec, {"site-a", "site-b", "site-c"});
  int selected = 0;
  for (const std::string site : {"site-a", "site-b", "site-c"}) {
    selected += static_cast<int>(Channel(site).Of(Kind::kTrain).size());
  }
  EXPECT_EQ(selected, 2);
  ASSERT_THAT(Status(run).rounds(), SizeIs(1));
  EXPECT_THAT(Status(run).rounds(0).sites(), SizeIs(2));
}

// --- Deadlines ---------------------------------------------------------------------

TEST_F(FederationTest, DeadlineDropsLateSitesAndTheRoundCompletesWithTheRest) {
  const int64_t run = StartTraining(Spec(1, 1), {"site-a", "site-b"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({7, 7, 7, 7, 7, 7})), IsOk());

  clock_.Advance(absl::Seconds(30));
  federation_->Tick();
  EXPECT_EQ(Status(run).phase(), "training") << "deadline not reached";

  clock_.Advance(absl::Seconds(31));
  federation_->Tick();
  EXPECT_EQ(Status(run).phase(), "evaluating");
  ASSERT_OK_AND_ASSIGN(TensorBundle aggregate, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(aggregate), ElementsAre(7, 7, 7, 7, 7, 7));
  v1::RunStatus status = Status(run);
  ASSERT_THAT(status.rounds(), SizeIs(1));
  // Storage has site-b as dropped; the live view shows the evaluation slots.
  EXPECT_THAT(Upload("site-b", run, 1, Model({1, 1, 1, 1, 1, 1})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("phase evaluating")));

  // The evaluation has its own deadline; a late evaluator is dropped too.
  ASSERT_THAT(Report("site-a", run, 1, EvalMetrics(4, 0.25, 1, 1)), IsOk());
  clock_.Advance(absl::Seconds(61));
  federation_->Tick();
  status = Status(run);
  EXPECT_EQ(status.state(), "done");
  ASSERT_THAT(status.rounds(), SizeIs(1));
  EXPECT_EQ(status.rounds(0).eval_metrics().examples(), 4);
  EXPECT_DOUBLE_EQ(status.rounds(0).eval_metrics().loss(), 0.25);
  ASSERT_THAT(status.rounds(0).sites(), SizeIs(2));
  EXPECT_EQ(status.rounds(0).sites(1).site(), "site-b");
  EXPECT_EQ(status.rounds(0).sites(1).state(), "dropped");
}

TEST_F(FederationTest, DeadlineWithTooFewUpdatesFailsTheRun) {
  const int64_t run = StartTraining(Spec(1, 2), {"site-a", "site-b"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({7, 7, 7, 7, 7, 7})), IsOk());
  clock_.Advance(absl::Seconds(61));
  federation_->Tick();
  EXPECT_EQ(Status(run).state(), "failed");
  EXPECT_THAT(Status(run).error(),
              HasSubstr("at most 1 of the 2 required sites can return an update "
                        "(site-b dropped: timed out after 60 s)"));
}

TEST_F(FederationTest, InitialModelDeadlineFailsTheRun) {
  Connect("site-a");
  const int64_t run = StartRun(Spec(1, 1));
  clock_.Advance(absl::Seconds(61));
  federation_->Tick();
  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "failed");
  EXPECT_THAT(status.error(),
              HasSubstr("site 'site-a' did not send the initial model within 60 s"));
  EXPECT_THAT(Channel("site-a").Of(Kind::kCancel), SizeIs(1));
}

// --- Restart -----------------------------------------------------------------------

TEST_F(FederationTest, RestartResumesAfterTheLastEvaluatedRound) {
  const int64_t run = StartTraining(Spec(3, 2), {"site-a", "site-b"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_THAT(Upload("site-b", run, 1, Model({3, 3, 3, 3, 3, 3})), IsOk());
  ASSERT_THAT(Report("site-a", run, 1, EvalMetrics(1, 1, 1, 1)), IsOk());
  ASSERT_THAT(Report("site-b", run, 1, EvalMetrics(1, 1, 1, 1)), IsOk());
  // Round 2 is open; site-a even uploaded, then the coordinator dies.
  ASSERT_THAT(Upload("site-a", run, 2, Model({5, 5, 5, 5, 5, 5})), IsOk());
  auto old_channel = channels_.at("site-a");
  std::ofstream(options_.spool_dir + "/upload-leftover") << "partial";

  Restart();
  EXPECT_TRUE(old_channel->closed());
  EXPECT_THAT(SpoolFileCount(), 0u) << "Start() removes partial uploads";
  EXPECT_EQ(Status(run).state(), "running");
  EXPECT_EQ(Status(run).phase(), "waiting-for-sites");
  EXPECT_EQ(Status(run).current_round(), 2);
  ASSERT_OK_AND_ASSIGN(TensorBundle round1, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(round1), ElementsAre(2, 2, 2, 2, 2, 2)) << "kept by garbage collection";

  Connect("site-a");
  Connect("site-b");
  for (const std::string site : {"site-a", "site-b"}) {
    EXPECT_THAT(Channel(site).Of(Kind::kInit), IsEmpty());
    EXPECT_THAT(Channel(site).Of(Kind::kEval), IsEmpty());
    ASSERT_THAT(Channel(site).Of(Kind::kTrain), SizeIs(1)) << site;
    EXPECT_EQ(Channel(site).Of(Kind::kTrain)[0].train().round(), 2);
    EXPECT_EQ(Channel(site).Of(Kind::kTrain)[0].train().base().round(), 1);
  }
  // Round 1 cannot be applied again.
  RoundCommit again;
  again.round.run_id = run;
  again.round.round = 1;
  again.round.model_sha256 = HexEncode(Sha256Of(round1));
  EXPECT_THAT(storage_->CommitRound(again),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("round 1 of run 1")));

  // The update sent before the crash is gone: site-a uploads round 2 again.
  ASSERT_THAT(Upload("site-a", run, 2, Model({2, 2, 2, 2, 2, 2})), IsOk());
  ASSERT_THAT(Upload("site-b", run, 2, Model({4, 4, 4, 4, 4, 4})), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle round2, ReadModel(run, 2));
  EXPECT_THAT(FloatsOf(round2), ElementsAre(3, 3, 3, 3, 3, 3));
  ASSERT_THAT(Report("site-a", run, 2, EvalMetrics(1, 1, 1, 1)), IsOk());
  ASSERT_THAT(Report("site-b", run, 2, EvalMetrics(1, 1, 1, 1)), IsOk());
  ASSERT_THAT(Upload("site-a", run, 3, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_THAT(Upload("site-b", run, 3, Model({1, 1, 1, 1, 1, 1})), IsOk());
  ASSERT_THAT(Report("site-a", run, 3, EvalMetrics(1, 1, 1, 1)), IsOk());
  ASSERT_THAT(Report("site-b", run, 3, EvalMetrics(1, 1, 1, 1)), IsOk());

  v1::RunStatus status = Status(run);
  EXPECT_EQ(status.state(), "done");
  EXPECT_EQ(status.completed_rounds(), 3);
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(run));
  std::vector<int32_t> numbers;
  for (const auto& round : rounds) numbers.push_back(round.round);
  EXPECT_THAT(numbers, ElementsAre(0, 1, 2, 3));
}

TEST_F(FederationTest, RestartAfterACommitEvaluatesBeforeTraining) {
  const int64_t run = StartTraining(Spec(2, 1), {"site-a"});
  ASSERT_THAT(Upload("site-a", run, 1, Model({6, 6, 6, 6, 6, 6})), IsOk());
  ASSERT_THAT(Channel("site-a").Of(Kind::kEval), SizeIs(1));
  // The coordinator dies after committing round 1, before any evaluation.

  Restart();
  Connect("site-a");
  ASSERT_THAT(Channel("site-a").Of(Kind::kEval), SizeIs(1));
  EXPECT_EQ(Channel("site-a").Of(Kind::kEval)[0].eval().round(), 1);
  EXPECT_THAT(Channel("site-a").Of(Kind::kTrain), IsEmpty());
  ASSERT_THAT(Report("site-a", run, 1, EvalMetrics(8, 0.5, 0.5, 0.5)), IsOk());

  ASSERT_THAT(Channel("site-a").Of(Kind::kTrain), SizeIs(1));
  EXPECT_EQ(Channel("site-a").Of(Kind::kTrain)[0].train().round(), 2);
  v1::RunStatus status = Status(run);
  ASSERT_GE(status.rounds_size(), 1);
  EXPECT_EQ(status.rounds(0).state(), "evaluated");
  ASSERT_THAT(status.rounds(0).sites(), SizeIs(1));
  EXPECT_EQ(status.rounds(0).sites(0).examples(), 1) << "training columns survive the restart";
  EXPECT_EQ(status.rounds(0).sites(0).state(), "evaluated");
}

TEST_F(FederationTest, RestartDuringInitializationAsksAgain) {
  Connect("site-a");
  const int64_t run = StartRun(Spec(1, 1));
  Restart();
  EXPECT_EQ(Status(run).phase(), "waiting-for-sites");
  Connect("site-a");
  EXPECT_THAT(Channel("site-a").Of(Kind::kInit), SizeIs(1));
  EXPECT_THAT(Upload("site-a", run, 0, Model({0, 0, 0, 0, 0, 0})), IsOk());
}

TEST_F(FederationTest, RestartLeavesFinishedRunsAlone) {
  const int64_t run = StartRun(Spec(1, 1));
  ASSERT_THAT(federation_->AbortRun(Admin(), run, "stop"), IsOk());
  Restart();
  Connect("site-a");
  EXPECT_THAT(Channel("site-a").Of(Kind::kInit), IsEmpty());
  EXPECT_EQ(Status(run).state(), "aborted");
}

TEST_F(FederationTest, RestartWithAMissingModelFailsOnlyThatRun) {
  const int64_t broken = StartTraining(Spec(2, 1), {"site-a"});
  ASSERT_OK_AND_ASSIGN(TensorBundle initial, ReadModel(broken, 0));
  ASSERT_OK_AND_ASSIGN(std::vector<RoundRecord> rounds, storage_->ListRounds(broken));
  ASSERT_THAT(rounds, SizeIs(1));
  const int64_t pending = StartRun(Spec(1, 2));
  ASSERT_TRUE(std::filesystem::remove(models_->dir() + "/" + rounds[0].model_sha256));

  Restart();
  EXPECT_EQ(Status(broken).state(), "failed");
  EXPECT_THAT(Status(broken).error(), HasSubstr("cannot resume"));
  EXPECT_EQ(Status(pending).state(), "running");
}

}  // namespace
}  // namespace fedmi
