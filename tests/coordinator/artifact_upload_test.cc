// Admin.UploadArtifact at the Federation core: who may upload, what a run
// spec may name, which run's artifacts a site may read, and how long they
// are kept.
#include "coordinator/artifact_upload.h"

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "common/tensor/bundle_transfer.h"
#include "tests/coordinator/federation_fixture.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TensorBundle Weights() {
  TensorBundle bundle;
  bundle.specs.push_back({"fc.weight", DType::kFloat32, {2}});
  const float values[] = {0.25f, -1.5f};
  bundle.body.resize(sizeof(values));
  std::memcpy(bundle.body.data(), values, sizeof(values));
  return bundle;
}

class ArtifactUploadTest : public FederationTest {
 protected:
  absl::StatusOr<v1::ArtifactReceipt> Upload(const Caller& caller, const TensorBundle& bundle) {
    ASSIGN_OR_RETURN(std::unique_ptr<ArtifactUpload> upload,
                     federation_->OpenArtifactUpload(caller));
    absl::Status added;
    const absl::Status streamed = StreamBundle(bundle, [&](const v1::TensorChunk& chunk) {
      added = upload->Add(chunk);
      return added.ok();
    });
    RETURN_IF_ERROR(added);
    RETURN_IF_ERROR(streamed);
    return upload->Finish();
  }

  static v1::RunSpec CustomSpec(const std::string& model_sha) {
    v1::RunSpec spec = Spec(/*rounds=*/1, /*min_sites=*/1);
    spec.set_model("custom");
    spec.set_model_file_sha256(model_sha);
    return spec;
  }
};

TEST_F(ArtifactUploadTest, OnlyAnAdminUploads) {
  EXPECT_THAT(federation_->OpenArtifactUpload(SiteCaller("site-a")),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(federation_->OpenArtifactUpload(CallerAs("reader", PartyRole::kAuditor)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt receipt, Upload(Admin(), Weights()));
  EXPECT_EQ(receipt.sha256(), BodySha256Hex(Weights()));
  EXPECT_EQ(receipt.bytes(), 8u);
  EXPECT_EQ(receipt.tensors(), 1);
}

TEST_F(ArtifactUploadTest, ARunNamesOnlyArtifactsOfTheRightKind) {
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt weights, Upload(Admin(), Weights()));
  EXPECT_THAT(federation_->StartRun(Admin(), CustomSpec(weights.sha256())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a model file")));
  EXPECT_THAT(federation_->StartRun(Admin(), CustomSpec(std::string(64, 'a'))),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("upload it first")));
  // One uint8 tensor of another rank is no file either: sites refuse it
  // (FileOfBundle), so the run must not start.
  TensorBundle square;
  square.specs.push_back({kFileTensorName, DType::kUInt8, {2, 2}});
  square.body = {'a', 'b', 'c', 'd'};
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt not_a_file, Upload(Admin(), square));
  EXPECT_THAT(federation_->StartRun(Admin(), CustomSpec(not_a_file.sha256())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a model file")));
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt file, Upload(Admin(), FileAsBundle("torchscript")));
  // DP-SGD needs per-example gradients fedmi cannot derive for a model file.
  v1::RunSpec private_custom = CustomSpec(file.sha256());
  private_custom.mutable_dp()->set_level(v1::DP_LEVEL_SAMPLE);
  private_custom.mutable_dp()->set_target_epsilon(4);
  EXPECT_THAT(federation_->StartRun(Admin(), private_custom),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("not for a model file"), HasSubstr("--dp site"))));
  EXPECT_THAT(federation_->StartRun(Admin(), CustomSpec(file.sha256())), IsOk());
}

TEST_F(ArtifactUploadTest, SitesReadAnArtifactOnlyThroughARunThatNamesIt) {
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt file, Upload(Admin(), FileAsBundle("torchscript")));
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt other, Upload(Admin(), FileAsBundle("other file")));
  const int64_t run = StartRun(CustomSpec(file.sha256()));
  v1::ModelRef ref;
  ref.set_run_id(run);
  ref.set_artifact_sha256(file.sha256());
  std::string sha;
  ASSERT_OK_AND_ASSIGN(std::string path, federation_->ModelPath(ref, &sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle read, ReadBundleFile(path));
  EXPECT_EQ(BodySha256Hex(read), file.sha256());
  EXPECT_EQ(HexEncode(sha), file.sha256());
  ref.set_artifact_sha256(other.sha256());
  EXPECT_THAT(federation_->ModelPath(ref), StatusIs(absl::StatusCode::kPermissionDenied));
}

// Artifacts live as long as a run names them: a restart collects the rest.
TEST_F(ArtifactUploadTest, ARestartKeepsArtifactsThatARunNames) {
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt file, Upload(Admin(), FileAsBundle("torchscript")));
  ASSERT_OK_AND_ASSIGN(v1::ArtifactReceipt unused, Upload(Admin(), FileAsBundle("unused")));
  StartRun(CustomSpec(file.sha256()));
  Restart();
  EXPECT_THAT(models_->PathFor(file.sha256()), IsOk());
  EXPECT_THAT(models_->PathFor(unused.sha256()), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace fedmi
