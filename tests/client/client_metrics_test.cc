// fedmi-client's metrics from a hand-made sequence of training progress and
// round outcomes, read back from the registry and its text exposition.
#include "client/client_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TrainingProgress At(int32_t round, int epoch, int64_t done, double seconds, double loss) {
  TrainingProgress p;
  p.run_id = 7;
  p.round = round;
  p.epoch = epoch;
  p.epochs = 2;
  p.done = done;
  p.total = 100;
  p.loss = loss;
  p.epoch_seconds = seconds;
  return p;
}

TEST(RefusalReasonTest, PolicyUnsupportedOrFailed) {
  EXPECT_STREQ(RefusalReason(absl::PermissionDeniedError("site policy: model")), "policy");
  EXPECT_STREQ(RefusalReason(absl::InvalidArgumentError("model 'x' is not available")),
               "unsupported");
  EXPECT_STREQ(RefusalReason(absl::FailedPreconditionError("no data")), "unsupported");
  EXPECT_STREQ(RefusalReason(absl::UnavailableError("upload failed")), "failed");
  EXPECT_STREQ(RefusalReason(absl::DataLossError("other bytes")), "failed");
}

class ClientMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(metrics_, ClientMetrics::Register(&registry_)); }
  double Value(const std::string& name, const metrics::LabelValues& labels = {},
               const std::string& label_name = "reason") {
    // The families are reached through the text, as a scraper would.
    const std::string text = registry_.RenderText();
    std::string line = name;
    if (!labels.empty()) line += "{" + label_name + "=\"" + labels[0] + "\"}";
    line += " ";
    const size_t at = text.find("\n" + line);
    EXPECT_NE(at, std::string::npos) << line << " not in\n" << text;
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + 1 + line.size()));
  }

  metrics::MetricRegistry registry_;
  std::unique_ptr<ClientMetrics> metrics_;
};

TEST_F(ClientMetricsTest, EveryFamilyStartsAtZero) {
  const std::string text = registry_.RenderText();
  for (const char* line :
       {"fedmi_client_images_trained_total 0", "fedmi_client_training_seconds_total 0",
        "fedmi_client_rounds_joined_total 0",
        "fedmi_client_rounds_refused_total{reason=\"policy\"} 0",
        "fedmi_client_rounds_refused_total{reason=\"unsupported\"} 0",
        "fedmi_client_rounds_refused_total{reason=\"failed\"} 0", "fedmi_client_last_run 0",
        "fedmi_client_last_round 0", "# TYPE fedmi_client_training_loss gauge",
        "# TYPE fedmi_client_images_trained_total counter"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
}

TEST_F(ClientMetricsTest, CountsImagesSecondsOnceAndKeepsTheLatestRateAndLoss) {
  // Round 1: two epochs of 100 images, each batch reported as done so far.
  metrics_->OnTrainingProgress(At(1, 0, 40, 0.5, 0.9));
  metrics_->OnTrainingProgress(At(1, 0, 100, 1.0, 0.7));
  metrics_->OnTrainingProgress(At(1, 1, 50, 0.25, 0.6));
  metrics_->OnTrainingProgress(At(1, 1, 100, 0.5, 0.5));
  metrics_->OnRoundOutcome(7, 1, absl::OkStatus());
  EXPECT_EQ(Value("fedmi_client_images_trained_total"), 200);
  EXPECT_EQ(Value("fedmi_client_training_seconds_total"), 1.5);
  EXPECT_EQ(Value("fedmi_client_training_images_per_second"), 200);  // 100 in 0.5 s
  EXPECT_EQ(Value("fedmi_client_training_loss"), 0.5);
  EXPECT_EQ(Value("fedmi_client_rounds_joined_total"), 1);
  // Round 2 repeats round 1's numbers for epoch 0: counted again, not
  // taken for the same epoch.
  metrics_->OnTrainingProgress(At(2, 0, 100, 0.25, 0.4));
  EXPECT_EQ(Value("fedmi_client_images_trained_total"), 300);
  EXPECT_EQ(Value("fedmi_client_training_seconds_total"), 1.75);
  EXPECT_EQ(Value("fedmi_client_training_images_per_second"), 400);
  EXPECT_EQ(Value("fedmi_client_last_round"), 2);
  EXPECT_EQ(Value("fedmi_client_last_run"), 7);
}

TEST_F(ClientMetricsTest, RoundPhasesAddUpByPhase) {
  EXPECT_EQ(Value("fedmi_client_round_phase_seconds_total", {"download"}, "phase"), 0);
  RoundPhaseTimes phases;
  phases.download = 0.5;
  phases.training = 2;
  phases.upload = 0.25;
  metrics_->OnRoundPhases(7, 1, phases);
  phases.secagg = 1;
  metrics_->OnRoundPhases(7, 2, phases);
  EXPECT_EQ(Value("fedmi_client_round_phase_seconds_total", {"download"}, "phase"), 1);
  EXPECT_EQ(Value("fedmi_client_round_phase_seconds_total", {"training"}, "phase"), 4);
  EXPECT_EQ(Value("fedmi_client_round_phase_seconds_total", {"secagg"}, "phase"), 1);
  EXPECT_EQ(Value("fedmi_client_round_phase_seconds_total", {"upload"}, "phase"), 0.5);
}

TEST_F(ClientMetricsTest, DpSgdStepsAreNotImages) {
  TrainingProgress p = At(1, 0, 10, 2.0, 0.3);
  p.dp_steps = true;
  metrics_->OnTrainingProgress(p);
  EXPECT_EQ(Value("fedmi_client_images_trained_total"), 0);
  EXPECT_EQ(Value("fedmi_client_training_seconds_total"), 2);
  EXPECT_EQ(Value("fedmi_client_training_loss"), 0.3);
}

TEST_F(ClientMetricsTest, RefusalsByReason) {
  metrics_->OnRoundOutcome(8, 1, absl::PermissionDeniedError("site policy: model"));
  metrics_->OnRoundOutcome(8, 2, absl::PermissionDeniedError("site policy: epsilon"));
  metrics_->OnRoundOutcome(9, 1, absl::UnavailableError("upload failed"));
  EXPECT_EQ(Value("fedmi_client_rounds_refused_total", {"policy"}), 2);
  EXPECT_EQ(Value("fedmi_client_rounds_refused_total", {"unsupported"}), 0);
  EXPECT_EQ(Value("fedmi_client_rounds_refused_total", {"failed"}), 1);
  EXPECT_EQ(Value("fedmi_client_rounds_joined_total"), 0);
  EXPECT_EQ(Value("fedmi_client_last_run"), 9);
  EXPECT_EQ(Value("fedmi_client_last_round"), 1);
}

TEST_F(ClientMetricsTest, ASecondRegistrationOnOneRegistryFails) {
  EXPECT_THAT(ClientMetrics::Register(&registry_).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace fedmi
