// UploadSession without sockets: each stream a site may send, from a
// complete update to every way one is refused, and a disk that fills up
// mid-spool.
#include "coordinator/upload_session.h"

#include <filesystem>

#include "tests/common/base/fault_injection_env.h"
#include "tests/coordinator/federation_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

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

class UploadSessionTest : public ::testing::Test {
 protected:
  std::unique_ptr<UploadSession> Open(uint64_t max_update_bytes = uint64_t{1} << 20) {
    v1::UpdateMetadata metadata;
    metadata.set_site("site-a");
    metadata.set_run_id(1);
    metadata.set_round(3);
    metadata.set_examples(10);
    return std::make_unique<UploadSession>(&receiver_, &env_, &faults_,
                                           UploadLimits{spool_.path(), max_update_bytes},
                                           SiteCaller("site-a"), metadata, ModelSpecs());
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

TEST_F(UploadThroughFederationTest, RefusedOpenIsRecordedAndOpensNothing) {
  const int64_t run = StartTraining(Spec(/*rounds=*/1, /*min_sites=*/2), {"site-a", "site-b"});
  EXPECT_THAT(federation_->OpenUpload(SiteCaller("site-a"), Metadata("site-a", run, 2, 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(SpoolFileCount(), 0u);
}

}  // namespace
}  // namespace fedmi
