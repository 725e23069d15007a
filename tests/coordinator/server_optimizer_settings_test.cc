#include "coordinator/server_optimizer_settings.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

v1::RunSpec SpecWith(const std::string& kind) {
  v1::RunSpec spec;
  spec.mutable_server_optimizer()->set_kind(kind);
  return spec;
}

TEST(ServerOptimizerSettingsTest, TheKindsDefaultsAreStoredInTheSpec) {
  v1::RunSpec adam = SpecWith("fedadam");
  ASSERT_THAT(CompleteServerOptimizerSettings(&adam), IsOk());
  const v1::ServerOptimizerSettings& settings = adam.server_optimizer();
  EXPECT_DOUBLE_EQ(settings.server_lr(), 0.1);
  EXPECT_DOUBLE_EQ(settings.beta1(), 0.9);
  EXPECT_DOUBLE_EQ(settings.beta2(), 0.99);
  EXPECT_DOUBLE_EQ(settings.tau(), 1e-3);
  EXPECT_FALSE(settings.has_momentum()) << "fedadam reads no momentum";

  v1::RunSpec yogi = SpecWith("fedyogi");
  ASSERT_THAT(CompleteServerOptimizerSettings(&yogi), IsOk());
  EXPECT_DOUBLE_EQ(yogi.server_optimizer().server_lr(), 0.01);

  v1::RunSpec momentum = SpecWith("fedavgm");
  momentum.mutable_server_optimizer()->set_server_lr(0.7);
  ASSERT_THAT(CompleteServerOptimizerSettings(&momentum), IsOk());
  EXPECT_DOUBLE_EQ(momentum.server_optimizer().server_lr(), 0.7) << "a given value is kept";
  EXPECT_DOUBLE_EQ(momentum.server_optimizer().momentum(), 0.9);
  EXPECT_FALSE(momentum.server_optimizer().has_tau());
  ASSERT_OK_AND_ASSIGN(ServerOptimizerOptions options, ServerOptimizerOptionsOf(momentum));
  EXPECT_EQ(options.kind, ServerOptimizerKind::kFedAvgM);
  EXPECT_DOUBLE_EQ(options.server_lr, 0.7);
}

TEST(ServerOptimizerSettingsTest, FedAvgAndNoOptimizerLeaveTheSpecWithoutTheField) {
  v1::RunSpec none;
  ASSERT_THAT(CompleteServerOptimizerSettings(&none), IsOk());
  EXPECT_FALSE(none.has_server_optimizer());
  v1::RunSpec fedavg = SpecWith("fedavg");
  ASSERT_THAT(CompleteServerOptimizerSettings(&fedavg), IsOk());
  EXPECT_FALSE(fedavg.has_server_optimizer());
  ASSERT_OK_AND_ASSIGN(ServerOptimizerOptions options, ServerOptimizerOptionsOf(fedavg));
  EXPECT_EQ(options.kind, ServerOptimizerKind::kFedAvg);
}

TEST(ServerOptimizerSettingsTest, SettingsTheKindDoesNotReadAreRefusedByName) {
  v1::RunSpec adagrad = SpecWith("fedadagrad");
  adagrad.mutable_server_optimizer()->set_beta2(0.9);
  EXPECT_THAT(CompleteServerOptimizerSettings(&adagrad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("beta2 applies to fedadam and fedyogi, not to fedadagrad")));
  v1::RunSpec fedavg = SpecWith("fedavg");
  fedavg.mutable_server_optimizer()->set_server_lr(0.5);
  EXPECT_THAT(CompleteServerOptimizerSettings(&fedavg),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not to fedavg")));
  v1::RunSpec adam = SpecWith("fedadam");
  adam.mutable_server_optimizer()->set_momentum(0.5);
  EXPECT_THAT(CompleteServerOptimizerSettings(&adam),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("momentum applies to fedavgm, not to fedadam")));
}

TEST(ServerOptimizerSettingsTest, UnknownKindsAndValuesOutOfRangeAreRefused) {
  v1::RunSpec unknown = SpecWith("fedsgd");
  EXPECT_THAT(CompleteServerOptimizerSettings(&unknown),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fedsgd")));
  v1::RunSpec beta = SpecWith("fedadam");
  beta.mutable_server_optimizer()->set_beta1(1.0);
  EXPECT_THAT(CompleteServerOptimizerSettings(&beta),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("beta1")));
  v1::RunSpec lr = SpecWith("fedavgm");
  lr.mutable_server_optimizer()->set_server_lr(-1);
  EXPECT_THAT(CompleteServerOptimizerSettings(&lr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server_lr")));
}

}  // namespace
}  // namespace fedmi
