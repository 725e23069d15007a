#include "common/tensor/bundle_transfer.h"

#include <cstring>

#include "common/crypto/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A model with a backbone and a two-class head.
TensorBundle TwoClassModel() {
  return FloatBundle({{"conv.weight", DType::kFloat32, {2}},
                      {"fc.weight", DType::kFloat32, {2, 1}},
                      {"fc.bias", DType::kFloat32, {2}}},
                     {0, 0, 0, 0, 0, 0});
}

TEST(BundleTransferTest, SelectKeepsTheBundlesOrderAndBytes) {
  const TensorBundle model = FloatBundle(
      {{"a", DType::kFloat32, {1}}, {"b", DType::kFloat32, {2}}, {"c", DType::kFloat32, {1}}},
      {1, 2, 3, 4});
  ASSERT_OK_AND_ASSIGN(TensorBundle picked, SelectTensors(model, {"c", "a"}));
  ASSERT_EQ(picked.specs.size(), 2u);
  EXPECT_EQ(picked.specs[0].name, "a");
  EXPECT_THAT(FloatsOf(picked), ElementsAre(1, 4));
  EXPECT_THAT(SelectTensors(model, {"d"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'d'")));
}

TEST(BundleTransferTest, InitialWeightsReplaceTensorsOfTheSameNameAndShape) {
  const TensorBundle weights = FloatBundle({{"conv.weight", DType::kFloat32, {2}},
                                            {"fc.weight", DType::kFloat32, {2, 1}},
                                            {"fc.bias", DType::kFloat32, {2}},
                                            {"extra", DType::kFloat32, {1}}},
                                           {1, 2, 3, 4, 5, 6, 7});
  InitialWeightsReport report;
  ASSERT_OK_AND_ASSIGN(TensorBundle started,
                       ApplyInitialWeights(TwoClassModel(), weights, false, &report));
  EXPECT_THAT(FloatsOf(started), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(report.loaded, ElementsAre("conv.weight", "fc.weight", "fc.bias"));
  EXPECT_THAT(report.unused, ElementsAre("extra"));
}

TEST(BundleTransferTest, ADifferentHeadIsRefusedUnlessPartialIsAllowed) {
  // ImageNet-style weights: a 3-class head and no bias.
  const TensorBundle weights =
      FloatBundle({{"conv.weight", DType::kFloat32, {2}}, {"fc.weight", DType::kFloat32, {3, 1}}},
                  {1, 2, 9, 9, 9});
  EXPECT_THAT(ApplyInitialWeights(TwoClassModel(), weights, false, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("fc.weight (model [2,1], weights float32 [3,1])"),
                             HasSubstr("missing: fc.bias"), HasSubstr("--init-allow-partial"))));
  InitialWeightsReport report;
  ASSERT_OK_AND_ASSIGN(TensorBundle started,
                       ApplyInitialWeights(TwoClassModel(), weights, true, &report));
  EXPECT_THAT(FloatsOf(started), ElementsAre(1, 2, 0, 0, 0, 0));
  EXPECT_THAT(report.Summary(), HasSubstr("loaded 1 of 3 tensors"));
}

TEST(BundleTransferTest, WeightsThatMatchNothingAreAlwaysRefused) {
  const TensorBundle weights = FloatBundle({{"other", DType::kFloat32, {2}}}, {1, 2});
  EXPECT_THAT(ApplyInitialWeights(TwoClassModel(), weights, true, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("match no tensor")));
}

TEST(BundleTransferTest, Float64WeightsAreConverted) {
  TensorBundle weights;
  weights.specs = {{"conv.weight", DType::kFloat64, {2}}};
  const double values[] = {0.5, -2.25};
  weights.body.resize(sizeof(values));
  std::memcpy(weights.body.data(), values, sizeof(values));
  ASSERT_OK_AND_ASSIGN(TensorBundle started,
                       ApplyInitialWeights(TwoClassModel(), weights, true, nullptr));
  EXPECT_THAT(FloatsOf(started), ElementsAre(0.5, -2.25, 0, 0, 0, 0));
}

TEST(BundleTransferTest, AFileTravelsAsOneUint8TensorWithTheFilesHash) {
  const std::string file = "PK\x03\x04 torchscript";
  const TensorBundle bundle = FileAsBundle(file);
  EXPECT_EQ(BodySha256Hex(bundle), HexEncode(Sha256::Digest(file)));
  ASSERT_OK_AND_ASSIGN(std::string back, FileOfBundle(bundle));
  EXPECT_EQ(back, file);
  EXPECT_THAT(FileOfBundle(TwoClassModel()), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace fedmi
