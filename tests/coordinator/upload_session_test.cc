// UploadSession without sockets: each stream a site may send, from a
// complete update to every way one is refused, and a disk that fills up
// mid-spool.
#include "coordinator/upload_session.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "tests/common/base/fault_injection_env.h"
#include "tests/coordinator/federation_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Keeps what a session hands on, as Federation would receive it.
class RecordingReceiver : public UploadReceiver {
 public:
  absl::StatusOr<v1::UploadReceipt> CompleteUpload(const Caller& caller,
                                                   ReceivedUpdate update) override {
    v1::UploadReceipt receipt;
    receipt.set_site(caller.name);
    receipt.set_sha256(update.sha256);
    receipt.set_bytes_received(update.bytes);
    delivered.push_back(std::move(update));
    return receipt;
  }
  void RecordUploadRefused(const Caller&, const v1::UpdateMetadata&,
                           const absl::Status& status) override {
    refusals.push_back(status);
  }

  std::vector<ReceivedUpdate> delivered;
  std::vector<absl::Status> refusals;
};

// Records the fault points a session reaches.
class RecordingFaults : public FaultHook {
 public:
  void Reached(FaultPoint point, int32_t round) override { reached.push_back({point, round}); }
  std::vector<std::pair<FaultPoint, int32_t>> reached;
};

v1::UploadMessage HeaderMessage(const TensorBundle& bundle, const std::string& sha256) {
  v1::UploadMessage message;
  *message.mutable_chunk()->mutable_header() = HeaderFromSpecs(bundle.specs, sha256);
  return message;
}

v1::UploadMessage BodyMessage(const TensorBundle& bundle, size_t offset, size_t size) {
  v1::UploadMessage message;
  message.mutable_chunk()->set_data(bundle.body.data() + offset, size);
  return message;
}

// The stream a site sends for `bundle`: header, then the body in two chunks.
std::vector<v1::UploadMessage> Stream(const TensorBundle& bundle) {
  const size_t half = bundle.body.size() / 2;
  return {HeaderMessage(bundle, Sha256Of(bundle)), BodyMessage(bundle, 0, half),
          BodyMessage(bundle, half, bundle.body.size() - half)};
}

// A training update of ModelSpecs(), scanned against `global_model_path`
// when one is given.
ExpectedUpload Expected(std::string global_model_path = "") {
  ExpectedUpload expected;
  expected.specs = ModelSpecs();
  expected.global_model_path = std::move(global_model_path);
  return expected;
}

// The body in pieces of `size` bytes (the last may be shorter), so that
// floats are split across chunks when `size` is not a multiple of 4.
std::vector<v1::UploadMessage> StreamInPieces(const TensorBundle& bundle, size_t size) {
  std::vector<v1::UploadMessage> stream = {HeaderMessage(bundle, Sha256Of(bundle))};
  for (size_t offset = 0; offset < bundle.body.size(); offset += size) {
    stream.push_back(BodyMessage(bundle, offset, std::min(size, bundle.body.size() - offset)));
  }
  return stream;
}

class UploadSessionTest : public ::testing::Test {
 protected:
  std::unique_ptr<UploadSession> Open(uint64_t max_update_bytes = uint64_t{1} << 20,
                                      ExpectedUpload expected = Expected()) {
    v1::UpdateMetadata metadata;
    metadata.set_site("site-a");
    metadata.set_run_id(1);
    metadata.set_round(3);
    metadata.set_examples(10);
    return std::make_unique<UploadSession>(&receiver_, &env_, &faults_,
                                           UploadLimits{spool_.path(), max_update_bytes},
                                           SiteCaller("site-a"), metadata, std::move(expected));
  }

  // Sends `messages`; the first refusal, or OK.
  static absl::Status Send(UploadSession& session, const std::vector<v1::UploadMessage>& messages) {
    for (const auto& message : messages) RETURN_IF_ERROR(session.Add(message));
    return absl::OkStatus();
  }

  std::vector<std::string> SpoolFiles() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(spool_.path())) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  // The refusal came back, was recorded exactly once and left no file.
  void ExpectRefusedCleanly(const absl::Status& status) {
    EXPECT_THAT(receiver_.refusals, ElementsAre(status));
    EXPECT_THAT(receiver_.delivered, IsEmpty());
    EXPECT_THAT(SpoolFiles(), IsEmpty());
  }

  const TensorBundle update_ = Model({1, 2, 3, 4, 5, 6});
  ScratchDir spool_;
  FaultInjectionEnv env_;
  RecordingFaults faults_;
  RecordingReceiver receiver_;
};

TEST_F(UploadSessionTest, CompleteUploadIsDeliveredOnceAsAVerifiedBundleFile) {
  auto session = Open();
  ASSERT_THAT(Send(*session, Stream(update_)), IsOk());
  ASSERT_OK_AND_ASSIGN(v1::UploadReceipt receipt, session->Finish());
  EXPECT_EQ(receipt.sha256(), Sha256Of(update_));
  EXPECT_EQ(receipt.bytes_received(), update_.body.size());

  ASSERT_THAT(receiver_.delivered, SizeIs(1));
  const ReceivedUpdate& update = receiver_.delivered[0];
  EXPECT_EQ(update.metadata.round(), 3);
  EXPECT_EQ(update.sha256, Sha256Of(update_));
  EXPECT_EQ(update.bytes, update_.body.size());
  EXPECT_EQ(update.path, spool_.Join(HexEncode(Sha256Of(update_)) + ".site-a"));
  ASSERT_OK_AND_ASSIGN(TensorBundle spooled, ReadBundleFile(update.path));
  EXPECT_EQ(spooled.specs, update_.specs);
  EXPECT_EQ(spooled.body, update_.body);
  EXPECT_THAT(SpoolFiles(), ElementsAre(HexEncode(Sha256Of(update_)) + ".site-a"));
  EXPECT_THAT(receiver_.refusals, IsEmpty());

  EXPECT_THAT(session->Finish(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(receiver_.delivered, SizeIs(1));
}

TEST_F(UploadSessionTest, PlaintextUpdateIsScannedAgainstTheGlobalModelInTheSamePass) {
  ScratchDir models;
  ASSERT_OK_AND_ASSIGN(std::string global,
                       WriteBundleFile(models.path(), Model({1, 1, 1, 1, 1, 1})));
  // Pieces of 5 bytes split most floats across two chunks.
  auto session = Open(uint64_t{1} << 20, Expected(global));
  ASSERT_THAT(Send(*session, StreamInPieces(update_, 5)), IsOk());
  ASSERT_THAT(session->Finish(), IsOk());
  ASSERT_THAT(receiver_.delivered, SizeIs(1));
  const std::optional<UpdateValues>& values = receiver_.delivered[0].values;
  ASSERT_TRUE(values.has_value());
  EXPECT_THAT(values->finite, IsOk());
  // (1-1)^2 + (2-1)^2 + ... + (6-1)^2
  EXPECT_EQ(values->squared_change, 0 + 1 + 4 + 9 + 16 + 25);
}

TEST_F(UploadSessionTest, NonFiniteValueIsNamedByTheScanAndLeftToTheRun) {
  ScratchDir models;
  ASSERT_OK_AND_ASSIGN(std::string global,
                       WriteBundleFile(models.path(), Model({0, 0, 0, 0, 0, 0})));
  auto session = Open(uint64_t{1} << 20, Expected(global));
  const TensorBundle diverged = Model({1, 2, 3, 4, std::nanf(""), 6});
  ASSERT_THAT(Send(*session, StreamInPieces(diverged, 7)), IsOk());
  ASSERT_THAT(session->Finish(), IsOk()) << "the bytes arrived whole; the run refuses the values";
  ASSERT_THAT(receiver_.delivered, SizeIs(1));
  ASSERT_TRUE(receiver_.delivered[0].values.has_value());
  EXPECT_THAT(receiver_.delivered[0].values->finite,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update of site 'site-a' has nan in tensor")));
}

TEST_F(UploadSessionTest, UnscannedUploadCarriesNoValues) {
  auto session = Open();
  ASSERT_THAT(Send(*session, Stream(update_)), IsOk());
  ASSERT_THAT(session->Finish(), IsOk());
  ASSERT_THAT(receiver_.delivered, SizeIs(1));
  EXPECT_FALSE(receiver_.delivered[0].values.has_value());
}

// An update's spool file lives for the round and is removed at start-up: no
// fsync. The initial model's is adopted into the model store by rename, so
// it must reach the disk before the round that names it is committed.
TEST_F(UploadSessionTest, OnlyTheAdoptedInitialModelIsSpooledDurably) {
  auto update = Open();
  ASSERT_THAT(Send(*update, Stream(update_)), IsOk());
  ASSERT_THAT(update->Finish(), IsOk());
  ASSERT_THAT(receiver_.delivered, SizeIs(1));
  EXPECT_EQ(env_.CommittedDurability(receiver_.delivered[0].path), Durability::kScratch);

  ExpectedUpload initial;
  initial.adopted = true;
  const TensorBundle model = Model({9, 8, 7, 6, 5, 4});
  auto adopted = Open(uint64_t{1} << 20, initial);
  ASSERT_THAT(Send(*adopted, Stream(model)), IsOk());
  ASSERT_THAT(adopted->Finish(), IsOk());
  ASSERT_THAT(receiver_.delivered, SizeIs(2));
  EXPECT_EQ(env_.CommittedDurability(receiver_.delivered[1].path), Durability::kSynced);
}

TEST_F(UploadSessionTest, BodyBeforeHeaderIsRefused) {
  auto session = Open();
  const absl::Status refused = session->Add(BodyMessage(update_, 0, 4));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                "update stream sent body bytes before its header"));
  ExpectRefusedCleanly(refused);
  // Final: nothing later is accepted, and nothing is recorded twice.
  EXPECT_EQ(session->Add(Stream(update_)[0]), refused);
  EXPECT_EQ(session->Finish().status(), refused);
  EXPECT_THAT(receiver_.refusals, SizeIs(1));
}

TEST_F(UploadSessionTest, CutOffStreamIsRefusedAndItsSpoolFileRemoved) {
  auto session = Open();
  ASSERT_THAT(Send(*session, {Stream(update_)[0], Stream(update_)[1]}), IsOk());
  EXPECT_THAT(SpoolFiles(), SizeIs(1)) << "the body is being spooled";
  const absl::Status refused = session->Finish().status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kDataLoss,
                                "update is truncated: received 12 of 24 body bytes"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, ExtraBodyIsRefused) {
  auto session = Open();
  std::vector<v1::UploadMessage> stream = Stream(update_);
  stream.push_back(BodyMessage(update_, 0, 1));
  const absl::Status refused = Send(*session, stream);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                "update body is longer than the 24 bytes its header declares"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, UpdateOverTheSizeLimitIsRefusedAtItsHeader) {
  auto session = Open(/*max_update_bytes=*/20);
  const absl::Status refused = session->Add(Stream(update_)[0]);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                "update has 24 bytes, above the limit of 20"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, WrongChecksumIsRefused) {
  auto session = Open();
  std::vector<v1::UploadMessage> stream = Stream(update_);
  const TensorBundle other = Model({9, 9, 9, 9, 9, 9});
  stream[0] = HeaderMessage(update_, Sha256Of(other));
  ASSERT_THAT(Send(*session, stream), IsOk());
  const absl::Status refused = session->Finish().status();
  EXPECT_THAT(
      refused,
      StatusIs(absl::StatusCode::kDataLoss,
               absl::StrCat("update is corrupt: body SHA-256 ", HexEncode(Sha256Of(update_)),
                            " does not match the header's ", HexEncode(Sha256Of(other)))));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, WrongDtypeIsRefusedBeforeAnyBodyByte) {
  auto session = Open();
  TensorBundle doubles = update_;
  doubles.specs[0].dtype = DType::kFloat64;
  const absl::Status refused = session->Add(HeaderMessage(doubles, ""));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                "update tensor 'fc.weight' has dtype float64, expected float32"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, WrongShapeIsRefusedBeforeAnyBodyByte) {
  auto session = Open();
  const TensorBundle wide =
      FloatBundle({{"fc.weight", DType::kFloat32, {2, 3}}, {"fc.bias", DType::kFloat32, {2}}},
                  {1, 2, 3, 4, 5, 6, 7, 8});
  const absl::Status refused = session->Add(HeaderMessage(wide, Sha256Of(wide)));
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                "update tensor 'fc.weight' has shape [2,3], expected [2,2]"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, SecondMetadataIsRefused) {
  auto session = Open();
  v1::UploadMessage metadata;
  metadata.mutable_metadata()->set_site("site-a");
  const absl::Status refused = Send(*session, {Stream(update_)[0], Stream(update_)[1], metadata});
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                "upload metadata may only be sent once, first"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, CancelledUploadIsRefused) {
  auto session = Open();
  ASSERT_THAT(Send(*session, {Stream(update_)[0], Stream(update_)[1]}), IsOk());
  const absl::Status refused = session->Cancel();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kCancelled, "upload cancelled by the site"));
  ExpectRefusedCleanly(refused);
}

TEST_F(UploadSessionTest, MidUploadFaultPointIsReachedOnBodyChunksOnly) {
  auto session = Open();
  ASSERT_THAT(session->Add(Stream(update_)[0]), IsOk());
  EXPECT_THAT(faults_.reached, IsEmpty()) << "the header alone is not mid-upload";
  ASSERT_THAT(session->Add(Stream(update_)[1]), IsOk());
  EXPECT_THAT(faults_.reached,
              ElementsAre(std::make_pair(FaultPoint::kCoordinatorMidUpload, int32_t{3})));
}

TEST_F(UploadSessionTest, FullDiskMidSpoolIsRefusedCleanly) {
  // The header and 4 body bytes fit; the first body chunk does not.
  env_.FailWritesAfter(BundleFilePrefix(ModelSpecs()).size() + 4);
  auto session = Open();
  ASSERT_THAT(session->Add(Stream(update_)[0]), IsOk());
  const absl::Status refused = session->Add(Stream(update_)[1]);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  ExpectRefusedCleanly(refused);
}

// Through the Federation: a disk that fills up mid-spool refuses the upload,
// nothing reaches the aggregator, and once there is room the same site's
// next upload of the same round is accepted.
class UploadThroughFederationTest : public FederationTest {
 protected:
  void SetUp() override {
    FederationTest::SetUp();
    options_.env = &env_;
    Restart();
  }
  void TearDown() override { federation_.reset(); }

  absl::StatusOr<v1::UploadReceipt> UploadStream(const std::string& site, int64_t run,
                                                 int32_t round, const TensorBundle& bundle,
                                                 int64_t examples) {
    ASSIGN_OR_RETURN(
        std::unique_ptr<UploadSession> session,
        federation_->OpenUpload(SiteCaller(site), Metadata(site, run, round, examples)));
    for (const auto& message : Stream(bundle)) RETURN_IF_ERROR(session->Add(message));
    return session->Finish();
  }

  FaultInjectionEnv env_;
};

TEST_F(UploadThroughFederationTest, FullDiskMidSpoolReachesNoAggregatorAndTheNextUploadSucceeds) {
  const int64_t run = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/2), {"site-a", "site-b"});
  const TensorBundle update_a = Model({1, 2, 3, 4, 5, 6});
  const TensorBundle update_b = Model({5, 6, 7, 8, 9, 10});

  env_.FailWritesAfter(BundleFilePrefix(ModelSpecs()).size() + 4);
  EXPECT_THAT(UploadStream("site-a", run, 1, update_a, 1),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(SpoolFileCount(), 0u);
  const v1::RunStatus during = Status(run);
  ASSERT_THAT(during.rounds(), SizeIs(1));
  for (const auto& site : during.rounds(0).sites()) {
    EXPECT_EQ(site.state(), "training") << site.site();
  }

  env_.Heal();
  ASSERT_OK_AND_ASSIGN(v1::UploadReceipt receipt, UploadStream("site-a", run, 1, update_a, 1));
  EXPECT_EQ(receipt.sha256(), Sha256Of(update_a));
  ASSERT_THAT(UploadStream("site-b", run, 1, update_b, 3), IsOk());
  // Weighted 1 : 3, as if the refused upload had never happened.
  ASSERT_OK_AND_ASSIGN(TensorBundle mean, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(mean), ElementsAre(4, 5, 6, 7, 8, 9));
  EXPECT_EQ(SpoolFileCount(), 0u);
}

// The no-loss guarantee without a disk round trip to lean on: an update cut
// off after its header or after any of its 3 body chunks, or cancelled after
// the last, is refused, and the round's sum is exactly what it would have
// been had the site never tried.
TEST_F(UploadThroughFederationTest, UpdateCutOffAtEveryChunkBoundaryNeverReachesTheSum) {
  const int64_t run = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/2), {"site-a", "site-b"});
  const TensorBundle update_a = Model({1, 2, 3, 4, 5, 6});
  const TensorBundle update_b = Model({5, 6, 7, 8, 9, 10});
  // Values that would move the mean wherever any of their chunks landed.
  const TensorBundle poisoned = Model({1000, 1000, 1000, 1000, 1000, 1000});
  // 10-byte chunks: the cuts fall inside floats, with part of one pending.
  const std::vector<v1::UploadMessage> stream = StreamInPieces(poisoned, 10);
  ASSERT_THAT(stream, SizeIs(4)) << "a header and 3 body chunks";
  for (size_t sent = 1; sent <= stream.size(); ++sent) {
    SCOPED_TRACE(absl::StrCat(sent, " messages sent"));
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<UploadSession> session,
        federation_->OpenUpload(SiteCaller("site-a"), Metadata("site-a", run, 1, 1)));
    for (size_t i = 0; i < sent; ++i) ASSERT_THAT(session->Add(stream[i]), IsOk());
    if (sent < stream.size()) {
      EXPECT_THAT(session->Finish(), StatusIs(absl::StatusCode::kDataLoss));
    } else {
      EXPECT_THAT(session->Cancel(), StatusIs(absl::StatusCode::kCancelled));
    }
    EXPECT_EQ(SpoolFileCount(), 0u);
  }
  ASSERT_THAT(UploadStream("site-a", run, 1, update_a, 1), IsOk());
  ASSERT_THAT(UploadStream("site-b", run, 1, update_b, 3), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle mean, ReadModel(run, 1));
  EXPECT_THAT(FloatsOf(mean), ElementsAre(4, 5, 6, 7, 8, 9));
}

// The same refusals as FederationTest's, with the values scanned while the
// update streams in rather than read back from the spool.
TEST_F(UploadThroughFederationTest, ValuesScannedWhileStreamingAreRefusedBeforeAggregation) {
  v1::RunSpec spec = Spec(1, 1);
  spec.set_max_update_norm(10);
  const int64_t run = StartTraining(spec, {"site-a", "site-b", "site-c"});
  const float nan = std::nanf("");
  EXPECT_THAT(UploadStream("site-b", run, 1, Model({1, 1, 1, nan, 1, 1}), 5),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("site 'site-b'"), HasSubstr("tensor 'fc.weight'"),
                             HasSubstr("element 3"))));
  // sqrt(6 * 5^2) = 12.2 > 10 against the all-zero global model.
  EXPECT_THAT(UploadStream("site-c", run, 1, Model({5, 5, 5, 5, 5, 5}), 5),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("site 'site-c' changes the model by 12.24"),
                             HasSubstr("bound of 10"))));
  EXPECT_EQ(SpoolFileCount(), 0u);
  ASSERT_THAT(UploadStream("site-a", run, 1, Model({1, 2, 3, 4, 4, 3}), 5), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadModel(run, 1));
  EXPECT_EQ(FloatsOf(model), (std::vector<float>{1, 2, 3, 4, 4, 3}));
}

TEST_F(UploadThroughFederationTest, EachPhaseOfAnUploadAndItsRoundIsTimed) {
  const int64_t run = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/1), {"site-a"});
  const PhaseTimes& phases = federation_->phase_times();
  ASSERT_THAT(UploadStream("site-a", run, 1, Model({1, 2, 3, 4, 5, 6}), 1), IsOk());
  for (UpdatePhase phase : {UpdatePhase::kHash, UpdatePhase::kCheck, UpdatePhase::kSpool,
                            UpdatePhase::kFold, UpdatePhase::kCommit}) {
    EXPECT_GT(phases.Seconds(phase), 0) << UpdatePhaseName(phase);
  }
  // The adapters time these two: nothing here goes through gRPC.
  EXPECT_EQ(phases.Seconds(UpdatePhase::kReceive), 0);
  EXPECT_EQ(phases.Seconds(UpdatePhase::kModelSend), 0);
}

TEST_F(UploadThroughFederationTest, RefusedOpenIsRecordedAndOpensNothing) {
  const int64_t run = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/2), {"site-a", "site-b"});
  EXPECT_THAT(federation_->OpenUpload(SiteCaller("site-a"), Metadata("site-a", run, 2, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(SpoolFileCount(), 0u);
}

}  // namespace
}  // namespace fedmi
