#include "cli/run_status_text.h"

#include <cmath>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Metrics SegmentationMetrics(int64_t examples, double dice, double iou) {
  v1::Metrics m;
  m.set_examples(examples);
  m.set_loss(0.25);
  m.set_auc(std::nan(""));
  m.set_dice(dice);
  m.set_iou(iou);
  m.set_mean_image_dice(0.875);
  m.mutable_overlap()->set_images(examples);
  return m;
}

v1::RunStatus SegmentationRun() {
  v1::RunStatus run;
  run.set_run_id(4);
  run.set_state("done");
  run.mutable_spec()->set_model("unet");
  run.mutable_spec()->set_rounds(1);
  v1::RoundStatus* round = run.add_rounds();
  round->set_round(1);
  round->set_state("evaluated");
  *round->mutable_eval_metrics() = SegmentationMetrics(30, 0.9375, 0.8125);
  v1::SiteParticipation* site = round->add_sites();
  site->set_site("site-a");
  site->set_state("evaluated");
  *site->mutable_eval_metrics() = SegmentationMetrics(10, 0.96875, 0.90625);
  return run;
}

TEST(RunStatusTextTest, ASegmentationRunShowsDiceAndIouForTheRoundAndEachSite) {
  std::ostringstream out;
  PrintRunStatus(out, SegmentationRun(), /*with_sites=*/true);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("DICE"));
  EXPECT_THAT(text, HasSubstr("IMG-DICE"));
  EXPECT_THAT(text, Not(HasSubstr("AUC")));
  EXPECT_THAT(text, HasSubstr("0.9375"));
  EXPECT_THAT(text, HasSubstr("0.8125"));
  EXPECT_THAT(text, HasSubstr("site-a"));
  EXPECT_THAT(text, HasSubstr("eval dice 0.9688"));
  EXPECT_THAT(text, HasSubstr("iou 0.9062"));

  const nlohmann::json json = RunJson(SegmentationRun());
  EXPECT_DOUBLE_EQ(json["rounds"][0]["eval"]["dice"].get<double>(), 0.9375);
  EXPECT_DOUBLE_EQ(json["rounds"][0]["eval"]["mean_image_dice"].get<double>(), 0.875);
  EXPECT_DOUBLE_EQ(json["rounds"][0]["sites"][0]["eval"]["dice"].get<double>(), 0.96875);
  EXPECT_DOUBLE_EQ(json["rounds"][0]["sites"][0]["eval"]["iou"].get<double>(), 0.90625);
  EXPECT_TRUE(json["rounds"][0]["eval"]["auc"].is_null());
}

TEST(RunStatusTextTest, AClassificationRunKeepsItsColumnsAndHasNoDice) {
  v1::RunStatus run = SegmentationRun();
  run.mutable_spec()->set_model("cnn");
  v1::Metrics m;
  m.set_examples(30);
  m.set_auc(0.75);
  *run.mutable_rounds(0)->mutable_eval_metrics() = m;
  *run.mutable_rounds(0)->mutable_sites(0)->mutable_eval_metrics() = m;
  std::ostringstream out;
  PrintRunStatus(out, run, /*with_sites=*/true);
  EXPECT_THAT(out.str(), HasSubstr("AUC"));
  EXPECT_THAT(out.str(), Not(HasSubstr("DICE")));
  EXPECT_THAT(out.str(), HasSubstr("eval auc 0.75"));
  EXPECT_FALSE(MetricsJson(m).contains("dice"));
}

TEST(RunStatusTextTest, TheRoundTableSaysItsMetricsAreTheSitesValidationData) {
  for (bool segmentation : {false, true}) {
    std::ostringstream out;
    PrintRoundTableHeader(out, segmentation);
    EXPECT_THAT(out.str(), HasSubstr("the sites' validation data, pooled\nROUND"));
  }
}

}  // namespace
}  // namespace fedmi::cli
