// UpdateValueScan and CheckUpdateValues on small bundle files: the check
// every plaintext update passes before it reaches an aggregator.
#include "coordinator/update_check.h"

#include <cmath>
#include <limits>

#include "tests/coordinator/federation_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class UpdateCheckTest : public ::testing::Test {
 protected:
  std::string Write(const TensorBundle& bundle) {
    auto path = WriteBundleFile(dir_.path(), bundle);
    EXPECT_THAT(path, IsOk());
    return path.value_or("");
  }

  // Scans `update` handed over in pieces of `piece` bytes.
  absl::StatusOr<UpdateValues> ScanInPieces(const TensorBundle& update, size_t piece) {
    ASSIGN_OR_RETURN(auto global, BundleFileReader::Open(Write(Model({1, 1, 1, 1, 1, 1}))));
    ASSIGN_OR_RETURN(auto scan, UpdateValueScan::Create("site-a", ModelSpecs(), std::move(global)));
    for (size_t offset = 0; offset < update.body.size(); offset += piece) {
      RETURN_IF_ERROR(
          scan->Add(update.body.data() + offset, std::min(piece, update.body.size() - offset)));
    }
    return scan->Finish();
  }

  ScratchDir dir_;
};

TEST_F(UpdateCheckTest, SquaredChangeIsTheSameHoweverTheBodyIsSplit) {
  const TensorBundle update = Model({1, 2, 3, 4, 5, 6});
  for (size_t piece : {1, 2, 3, 4, 5, 7, 24}) {
    ASSERT_OK_AND_ASSIGN(UpdateValues values, ScanInPieces(update, piece));
    EXPECT_THAT(values.finite, IsOk()) << piece;
    EXPECT_EQ(values.squared_change, 0 + 1 + 4 + 9 + 16 + 25) << piece;
  }
}

TEST_F(UpdateCheckTest, SquaredChangeHasTheSameBitsHoweverTheBodyIsSplit) {
  // Values whose squares round differently depending on the order of the
  // additions; a site must not be able to move its norm by choosing chunks.
  const TensorBundle update = Model({1.1f, -2.7f, 3.3e3f, 4.1e-3f, 0.7f, 1e5f});
  ASSERT_OK_AND_ASSIGN(UpdateValues whole, ScanInPieces(update, 24));
  for (size_t piece : {1, 3, 4, 5, 8, 13}) {
    ASSERT_OK_AND_ASSIGN(UpdateValues split, ScanInPieces(update, piece));
    EXPECT_EQ(split.squared_change, whole.squared_change) << piece;
  }
}

TEST_F(UpdateCheckTest, FirstNonFiniteValueIsNamedByTensorAndElement) {
  const float inf = std::numeric_limits<float>::infinity();
  const TensorBundle update = Model({1, 2, 3, 4, -inf, std::nanf("")});
  ASSERT_OK_AND_ASSIGN(UpdateValues values, ScanInPieces(update, 3));
  EXPECT_THAT(values.finite,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "update of site 'site-a' has -inf in tensor 'fc.bias' at element 0; "
                       "aggregation needs finite weights"));
  EXPECT_THAT(CheckUpdateValues("site-a", values, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-inf")));
}

TEST_F(UpdateCheckTest, ShortOrLongBodyIsNamed) {
  const TensorBundle update = Model({1, 2, 3, 4, 5, 6});
  ASSERT_OK_AND_ASSIGN(auto global, BundleFileReader::Open(Write(update)));
  ASSERT_OK_AND_ASSIGN(auto scan,
                       UpdateValueScan::Create("site-a", ModelSpecs(), std::move(global)));
  ASSERT_THAT(scan->Add(update.body.data(), 10), IsOk());
  EXPECT_THAT(scan->Finish().finite,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "update of site 'site-a' ended after 10 body bytes, expected 24"));

  ASSERT_OK_AND_ASSIGN(global, BundleFileReader::Open(Write(update)));
  ASSERT_OK_AND_ASSIGN(scan, UpdateValueScan::Create("site-a", ModelSpecs(), std::move(global)));
  ASSERT_THAT(scan->Add(update.body.data(), update.body.size()), IsOk());
  ASSERT_THAT(scan->Add(update.body.data(), 4), IsOk());
  EXPECT_THAT(scan->Finish().finite, StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("more than the 24 body bytes")));
}

TEST_F(UpdateCheckTest, NormBeyondTheBoundIsRefusedAndWithinItPasses) {
  UpdateValues values;
  values.squared_change = 150;  // norm 12.247
  EXPECT_THAT(CheckUpdateValues("site-c", values, 10),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("site 'site-c' changes the model by 12.24"),
                             HasSubstr("bound of 10"))));
  ASSERT_OK_AND_ASSIGN(double norm, CheckUpdateValues("site-c", values, 13));
  EXPECT_NEAR(norm, std::sqrt(150.0), 1e-12);
  EXPECT_THAT(CheckUpdateValues("site-c", values, 0), IsOk()) << "0: no bound";
  values.squared_change = std::nan("");
  EXPECT_THAT(CheckUpdateValues("site-c", values, 10), StatusIs(absl::StatusCode::kInvalidArgument))
      << "NaN is never within a bound";
}

TEST_F(UpdateCheckTest, GlobalModelOfAnotherLayoutOrDtypeIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto global, BundleFileReader::Open(
                                        Write(FloatBundle({{"w", DType::kFloat32, {2}}}, {1, 2}))));
  EXPECT_THAT(UpdateValueScan::Create("site-a", ModelSpecs(), std::move(global)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the global model")));
  ASSERT_OK_AND_ASSIGN(global, BundleFileReader::Open(Write(Model({1, 1, 1, 1, 1, 1}))));
  std::vector<TensorSpec> ints = ModelSpecs();
  ints[0].dtype = DType::kInt64;
  EXPECT_THAT(UpdateValueScan::Create("site-a", ints, std::move(global)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float32")));
}

TEST_F(UpdateCheckTest, ScanUpdateFileRefusesAnUpdateOfOtherTensors) {
  // The same number of bytes under other names and shapes.
  const TensorBundle other = FloatBundle({{"w", DType::kFloat32, {6}}}, {1, 2, 3, 4, 5, 6});
  EXPECT_THAT(
      ScanUpdateFile("site-a", ModelSpecs(), Write(other), Write(Model({1, 1, 1, 1, 1, 1}))),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("update of site 'site-a'")));
}

TEST_F(UpdateCheckTest, ScanUpdateFileReadsAWholeSpooledUpdate) {
  ASSERT_OK_AND_ASSIGN(UpdateValues values,
                       ScanUpdateFile("site-a", ModelSpecs(), Write(Model({3, 1, 1, 1, 1, 1})),
                                      Write(Model({1, 1, 1, 1, 1, 1}))));
  EXPECT_THAT(values.finite, IsOk());
  EXPECT_EQ(values.squared_change, 4);
}

}  // namespace
}  // namespace fedmi
