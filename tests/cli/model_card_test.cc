// The model card, written without model code (.safetensors) and read back
// (cli/model_card.h, cli/model_export.h).
#include "cli/model_card.h"

#include <map>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/model_file_format.h"
#include "common/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/model_card_fixture.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

// Writes round `round` of `run` as a .safetensors file and reads its card back.
json ExportedCard(const v1::RunStatus& run, int32_t round,
                  const std::vector<std::string>& class_names = {}) {
  ScratchDir dir;
  const std::string path = dir.Join("m.safetensors");
  ExportFormat format;
  format.kind = ModelFileKind::kSafetensors;
  format.class_names = class_names;
  TensorBundle weights = FloatBundle({{"w", DType::kFloat32, {2}}}, {1.0f, 2.0f});
  EXPECT_THAT(WriteRunModelFile(run, round, weights, path, format, nullptr, nullptr), IsOk());
  std::map<std::string, std::string> metadata;
  EXPECT_THAT(ReadSafetensors(path, &metadata), IsOk());
  absl::StatusOr<json> card = ModelCardFromMetadata(metadata, path);
  EXPECT_THAT(card, IsOk());
  return card.ok() ? *card : json();
}

TEST(ModelCardTest, SaysWhatTheRunsSpecAndMetricsSay) {
  const v1::RunStatus run = FinishedRun();
  const json card = ExportedCard(run, 2, {"normal", "pneumonia"});
  EXPECT_EQ(card["format"], kModelCardFormat);
  EXPECT_EQ(card["card_version"], kModelCardVersion);
  EXPECT_EQ(card["architecture"], run.spec().model());
  EXPECT_EQ(card["task"], "classification");
  EXPECT_EQ(card["num_classes"], run.spec().num_classes());
  EXPECT_EQ(card["class_names"], json({"normal", "pneumonia"}));
  EXPECT_EQ(card["input"]["height"], 28);
  EXPECT_EQ(card["input"]["width"], 28);
  EXPECT_EQ(card["input"]["channels"], 1);
  EXPECT_EQ(card["normalization"]["scale"], kPixelScale);
  EXPECT_EQ(card["normalization"]["mean"], kInputMean);
  EXPECT_EQ(card["normalization"]["std"], kInputStd);
  EXPECT_EQ(card["normalization"]["formula"], "(pixel / 255 - 0.5) / 0.5");

  const json& from = card["run"];
  EXPECT_EQ(from["id"], run.run_id());
  EXPECT_EQ(from["round"], 2);
  EXPECT_EQ(from["spec_sha256"], HexEncode(run.spec_sha256()));
  EXPECT_EQ(from["strategy"], run.spec().strategy());
  EXPECT_EQ(from["secure_aggregation"], true);
  EXPECT_EQ(from["sites"], 3) << "site-1..3 sent updates; site-4 only evaluated";

  const v1::Metrics& metrics = run.rounds(1).eval_metrics();
  const json& validation = card["validation"];
  EXPECT_EQ(validation["examples"], metrics.examples());
  EXPECT_EQ(validation["auc"], metrics.auc());
  EXPECT_EQ(validation["accuracy"], metrics.accuracy());
  EXPECT_EQ(validation["sensitivity"], metrics.sensitivity());
  EXPECT_EQ(validation["specificity"], metrics.specificity());
  EXPECT_EQ(validation["f1"], metrics.f1());
  EXPECT_EQ(validation["loss"], metrics.loss());
  const json& threshold = card["operating_threshold"];
  EXPECT_EQ(threshold["threshold"], metrics.operating_threshold());
  EXPECT_EQ(threshold["method"], "youden");
  EXPECT_EQ(threshold["sensitivity"], metrics.operating_sensitivity());
  EXPECT_EQ(threshold["specificity"], metrics.operating_specificity());
  EXPECT_TRUE(card["differential_privacy"].is_null());
  EXPECT_EQ(card["created"], "2026-12-07T00:02:00Z") << "when round 2's model was committed";
  EXPECT_FALSE(card["fedmi_version"].get<std::string>().empty());
}

TEST(ModelCardTest, NamesNoSiteAndNoUpdate) {
  const v1::RunStatus run = FinishedRun();
  const std::string text = ExportedCard(run, 2).dump();
  for (const char* site : {"site-1", "site-2", "site-3", "site-4"}) {
    EXPECT_THAT(text, Not(HasSubstr(site)));
    EXPECT_THAT(text, Not(HasSubstr(HexEncode(Sha256::Digest(site)))));
  }
}

TEST(ModelCardTest, TheInitialModelHasNoValidationAndTheRunsCreationTime) {
  const json card = ExportedCard(FinishedRun(), 0);
  EXPECT_TRUE(card["validation"].is_null());
  EXPECT_TRUE(card["operating_threshold"].is_null());
  EXPECT_EQ(card["run"]["round"], 0);
  EXPECT_EQ(card["run"]["sites"], 0);
  EXPECT_EQ(card["created"], "2026-12-07T00:00:00Z");
  EXPECT_EQ(card["class_names"], json::array()) << "not named unless given";
}

TEST(ModelCardTest, APrivateRunsCardStatesItsGuaranteeAsNumbers) {
  v1::RunStatus run = FinishedRun();
  *run.mutable_spec()->mutable_dp() = CompletedSampleDp(1.1, 0.05, 20);
  const json card = ExportedCard(run, 2);
  const std::map<std::string, std::string> privacy = PrivacyMetadata(run, 2);
  ASSERT_TRUE(card["differential_privacy"].is_object());
  EXPECT_EQ(card["differential_privacy"]["level"], "sample");
  EXPECT_EQ(card["differential_privacy"]["epsilon"], std::stod(privacy.at("dp_epsilon")));
  EXPECT_EQ(card["differential_privacy"]["delta"], 1e-5);
  EXPECT_THAT(card["differential_privacy"]["mechanism"].get<std::string>(), HasSubstr("DP-SGD"));
}

TEST(ModelCardTest, ClassNamesMustNameEachClassOnce) {
  ScratchDir dir;
  ExportFormat format;
  format.kind = ModelFileKind::kSafetensors;
  TensorBundle weights = FloatBundle({{"w", DType::kFloat32, {1}}}, {1.0f});
  for (const std::vector<std::string>& names : std::vector<std::vector<std::string>>{
           {"normal"}, {"a", "b", "c"}, {"normal", ""}, {"same", "same"}}) {
    format.class_names = names;
    EXPECT_THAT(WriteRunModelFile(FinishedRun(), 2, weights, dir.Join("m.safetensors"), format,
                                  nullptr, nullptr),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--class-names")));
  }
  EXPECT_FALSE(Env::Default()->FileExists(dir.Join("m.safetensors")));
}

TEST(ModelCardTest, RefusesWhatIsNotAFedmiCard) {
  EXPECT_THAT(ModelCardFromMetadata({{"format", "pt"}}, "/m/other.safetensors"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "/m/other.safetensors is not a fedmi model: it has no model card and no "
                       "fedmi metadata"));
  EXPECT_THAT(ModelCardFromMetadata({{"model_card", "{\"arch\": "}, {"arch", "cnn"}}, "/m/x.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/m/x.pt: its model card is not a JSON object")));
  EXPECT_THAT(ModelCardFromMetadata({{"model_card", "[1, 2]"}}, "/m/x.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(ModelCardFromMetadata({{"model_card", "{\"format\": \"other\"}"}}, "/m/x.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("does not say \"format\": \"fedmi-model-card\"")));
}

TEST(ModelCardTest, RefusesACardThatDescribesAnotherModel) {
  ModelFileInfo info;
  info.arch = "resnet18";
  const std::string card = ModelCardOf(info).dump();
  EXPECT_THAT(ModelCardFromMetadata({{"model_card", card}, {"arch", "resnet18"}}, "/m/x.pt"),
              IsOk());
  EXPECT_THAT(
      ModelCardFromMetadata({{"model_card", card}, {"arch", "cnn"}}, "/m/x.pt"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "/m/x.pt: its model card says arch resnet18 but the model's is cnn (a card from "
               "another file?)"));
  EXPECT_THAT(ModelCardFromMetadata({{"model_card", card}, {"channels", "3"}}, "/m/x.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("says channels 1")));
}

TEST(ModelCardTest, AnOlderFileGetsTheCardItsMetadataAllows) {
  absl::StatusOr<json> card = ModelCardFromMetadata({{"arch", "resnet18"},
                                                     {"num_classes", "2"},
                                                     {"run", "3"},
                                                     {"round", "7"},
                                                     {"channels", "3"},
                                                     {"image_size", "64"},
                                                     {"operating_threshold", "0.4"}},
                                                    "/m/old.safetensors");
  ASSERT_THAT(card, IsOk());
  EXPECT_EQ((*card)["card_version"], 0);
  EXPECT_EQ((*card)["architecture"], "resnet18");
  EXPECT_EQ((*card)["input"]["channels"], 3);
  EXPECT_EQ((*card)["input"]["height"], 64);
  EXPECT_EQ((*card)["run"]["round"], 7);
  EXPECT_TRUE((*card)["run"]["secure_aggregation"].is_null()) << "the file does not say";
  EXPECT_TRUE((*card)["run"]["sites"].is_null());
  EXPECT_EQ((*card)["operating_threshold"]["threshold"], 0.4);
  EXPECT_TRUE((*card)["fedmi_version"].is_null()) << "the file does not say";
  EXPECT_THAT(ModelCardText(*card), HasSubstr("written before model cards"));
  EXPECT_THAT(ModelCardText(*card), HasSubstr("secure aggregation     -\n"));
}

TEST(ModelCardTest, TextShowsOneFactALine) {
  const std::string text = ModelCardText(ExportedCard(FinishedRun(), 2, {"normal", "pneumonia"}));
  EXPECT_THAT(text, HasSubstr("architecture           cnn (classification)\n"));
  EXPECT_THAT(text, HasSubstr("normalization          (pixel / 255 - 0.5) / 0.5\n"));
  EXPECT_THAT(text, HasSubstr("classes                2: normal, pneumonia\n"));
  EXPECT_THAT(text, HasSubstr("run                    4, round 2\n"));
  EXPECT_THAT(text, HasSubstr("secure aggregation     on\n"));
  EXPECT_THAT(text, HasSubstr("differential privacy   none\n"));
  EXPECT_THAT(text, HasSubstr("operating threshold    0.62 (youden), sensitivity 0.95, "
                              "specificity 0.8 on validation\n"));
  EXPECT_THAT(text, HasSubstr("validation             examples 524, auc 0.9612, accuracy 0.9, "));
  EXPECT_THAT(text, HasSubstr("created                2026-12-07T00:02:00Z\n"));
}

}  // namespace
}  // namespace fedmi::cli
