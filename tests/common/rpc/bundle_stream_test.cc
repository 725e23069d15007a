// ReceiveBundle against a fake stream: a header that claims more bytes than
// the machine can give (but under the reader's 64 GiB cap) ends as a short
// stream, not as a crash in the reservation.
#include "common/rpc/bundle_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "common/tensor/tensor_bundle.h"
#include "tests/common/tensor/chunk_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

class FakeChunkReader : public grpc::ClientReaderInterface<v1::TensorChunk> {
 public:
  explicit FakeChunkReader(std::vector<v1::TensorChunk> chunks) : chunks_(std::move(chunks)) {}
  bool Read(v1::TensorChunk* chunk) override {
    if (next_ >= chunks_.size()) return false;
    *chunk = chunks_[next_++];
    return true;
  }
  bool NextMessageSize(uint32_t* size) override {
    *size = 1 << 20;
    return next_ < chunks_.size();
  }
  void WaitForInitialMetadata() override {}
  grpc::Status Finish() override { return grpc::Status::OK; }

 private:
  std::vector<v1::TensorChunk> chunks_;
  size_t next_ = 0;
};

v1::TensorChunk Header(const std::vector<TensorSpec>& specs) {
  return HeaderChunk(HeaderFromSpecs(specs, ""));
}

TEST(ReceiveBundleTest, ReceivesAWholeBundle) {
  const std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {2}}};
  FakeChunkReader reader({Header(specs), DataChunk(std::string(8, '\1'))});
  grpc::ClientContext context;
  ASSERT_OK_AND_ASSIGN(TensorBundle bundle, ReceiveBundle(&context, &reader, "model"));
  EXPECT_EQ(bundle.body, std::vector<char>(8, '\1'));
}

TEST(ReceiveBundleTest, AHeaderClaimingMoreThanTheMachineHasIsAShortStreamNotACrash) {
  // 60 GiB of float32, under the 64 GiB cap: more than this machine's memory
  // (a larger one reserves it untouched, and the test holds as well).
  const std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {int64_t{15} << 30}}};
  FakeChunkReader reader({Header(specs), DataChunk(std::string(8, '\1'))});
  grpc::ClientContext context;
  const absl::StatusOr<TensorBundle> bundle = ReceiveBundle(&context, &reader, "model");
  EXPECT_FALSE(bundle.ok());
  EXPECT_THAT(bundle.status().message(), ::testing::HasSubstr("model")) << bundle.status();
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kDataLoss) << bundle.status();
}

}  // namespace
}  // namespace fedmi
