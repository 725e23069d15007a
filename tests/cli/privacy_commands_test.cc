// `fedmi privacy epsilon|noise` through the CLI11 app main() builds: the
// numbers agree with the library, noise -> epsilon round-trips, the epochs
// form is the step form it stands for, and usage errors exit 2 naming the
// flag. (The accounting itself: tests/common/privacy/rdp_accountant_test.cc.)
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

using Outcome = CliOutcome;

Outcome Privacy(std::vector<std::string> args) {
  return RunCliCommands(AddPrivacyCommands, "privacy", std::move(args));
}

TEST(PrivacyCommandsTest, EpsilonMatchesTheLibrary) {
  Outcome text = Privacy({"epsilon", "--noise-multiplier", "1.5", "--sample-rate", "0.04",
                          "--steps", "2250", "--delta", "1e-5"});
  ASSERT_EQ(text.exit_code, kExitOk) << text.err;
  EXPECT_THAT(text.out, HasSubstr("epsilon 7.32911 at delta 1e-05"));
  EXPECT_THAT(text.out, HasSubstr("best Renyi order 3.9, tight conversion"));

  Outcome json = Privacy({"epsilon", "--noise-multiplier", "1.5", "--sample-rate", "0.04",
                          "--steps", "2250", "--delta", "1e-5", "--json"});
  ASSERT_EQ(json.exit_code, kExitOk) << json.err;
  const nlohmann::json object = json.Json();
  ASSERT_TRUE(object.is_object()) << json.out;
  EXPECT_NEAR(object["epsilon"].get<double>(), 7.32911117143, 1e-9);  // Opacus' reference
  EXPECT_EQ(object["order"].get<double>(), 3.9);
  EXPECT_EQ(object["steps"].get<int64_t>(), 2250);
  EXPECT_EQ(object["conversion"], "tight");

  Outcome classic =
      Privacy({"epsilon", "--noise-multiplier", "1.5", "--sample-rate", "0.04", "--steps", "2250",
               "--delta", "1e-5", "--conversion", "classic", "--json"});
  ASSERT_EQ(classic.exit_code, kExitOk) << classic.err;
  EXPECT_GT(classic.Json()["epsilon"].get<double>(), object["epsilon"].get<double>());
  EXPECT_EQ(classic.Json()["conversion"], "classic");
}

TEST(PrivacyCommandsTest, NoiseRoundTripsThroughEpsilon) {
  for (const char* conversion : {"tight", "classic"}) {
    SCOPED_TRACE(conversion);
    Outcome noise = Privacy({"noise", "--target-epsilon", "3", "--delta", "1e-6", "--sample-rate",
                             "0.01", "--steps", "5000", "--conversion", conversion, "--json"});
    ASSERT_EQ(noise.exit_code, kExitOk) << noise.err;
    const nlohmann::json calibrated = noise.Json();
    ASSERT_TRUE(calibrated.is_object()) << noise.out;
    const double sigma = calibrated["noise_multiplier"].get<double>();
    EXPECT_LE(calibrated["epsilon"].get<double>(), 3);
    EXPECT_EQ(calibrated["target_epsilon"].get<double>(), 3);

    Outcome epsilon =
        Privacy({"epsilon", "--noise-multiplier", absl::StrCat(sigma), "--delta", "1e-6",
                 "--sample-rate", "0.01", "--steps", "5000", "--conversion", conversion, "--json"});
    ASSERT_EQ(epsilon.exit_code, kExitOk) << epsilon.err;
    const double spent = epsilon.Json()["epsilon"].get<double>();
    EXPECT_LE(spent, 3);
    EXPECT_GT(spent, 3 * (1 - 1e-4)) << "the printed sigma is rounded up by at most 1e-5";
  }
  Outcome text = Privacy({"noise", "--target-epsilon", "8", "--delta", "1e-5", "--sample-rate",
                          "0.04", "--steps", "2250"});
  ASSERT_EQ(text.exit_code, kExitOk) << text.err;
  EXPECT_THAT(text.out,
              HasSubstr("noise multiplier 1.41579 keeps epsilon within 8 at delta 1e-05"));
}

TEST(PrivacyCommandsTest, EpochsStandForSampleRateAndSteps) {
  // 50000 records in batches of 256: q = 256 / 50000, ceil(50000 / 256) = 196
  // steps per epoch, 20 epochs.
  Outcome epochs =
      Privacy({"epsilon", "--noise-multiplier", "1.1", "--epochs", "20", "--dataset-size", "50000",
               "--batch-size", "256", "--delta", "1e-5", "--json"});
  ASSERT_EQ(epochs.exit_code, kExitOk) << epochs.err;
  EXPECT_EQ(epochs.Json()["steps"].get<int64_t>(), 3920);
  Outcome text = Privacy({"epsilon", "--noise-multiplier", "1.1", "--epochs", "20",
                          "--dataset-size", "50000", "--batch-size", "256", "--delta", "1e-5"});
  EXPECT_THAT(text.out, HasSubstr("3920 steps at sample rate 0.00512 (20 epochs of 50000 records "
                                  "in batches of 256)"));
  EXPECT_DOUBLE_EQ(epochs.Json()["sample_rate"].get<double>(), 256.0 / 50000);
  Outcome steps =
      Privacy({"epsilon", "--noise-multiplier", "1.1", "--sample-rate", absl::StrCat(256.0 / 50000),
               "--steps", "3920", "--delta", "1e-5", "--json"});
  ASSERT_EQ(steps.exit_code, kExitOk) << steps.err;
  EXPECT_DOUBLE_EQ(epochs.Json()["epsilon"].get<double>(), steps.Json()["epsilon"].get<double>());
}

TEST(PrivacyCommandsTest, UsageErrorsExitTwoNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"epsilon", "--sample-rate", "0.01", "--steps", "10", "--delta", "1e-5"},
       "--noise-multiplier is required"},
      {{"epsilon", "--noise-multiplier", "0", "--sample-rate", "0.01", "--steps", "10", "--delta",
        "1e-5"},
       "--noise-multiplier must be positive"},
      {{"epsilon", "--noise-multiplier", "1", "--sample-rate", "1.5", "--steps", "10", "--delta",
        "1e-5"},
       "--sample-rate must be in (0, 1]"},
      {{"epsilon", "--noise-multiplier", "1", "--sample-rate", "0.01", "--delta", "1e-5"},
       "--steps is required"},
      {{"epsilon", "--noise-multiplier", "1", "--sample-rate", "0.01", "--steps", "10", "--delta",
        "1"},
       "--delta must be in (0, 1)"},
      {{"epsilon", "--noise-multiplier", "1", "--steps", "10", "--epochs", "2", "--delta", "1e-5"},
       "excludes"},
      {{"epsilon", "--noise-multiplier", "1", "--epochs", "2", "--dataset-size", "100", "--delta",
        "1e-5"},
       "--batch-size must be given"},
      {{"epsilon", "--noise-multiplier", "1", "--delta", "1e-5"}, "give either --sample-rate"},
      {{"epsilon", "--noise-multiplier", "1", "--sample-rate", "0.01", "--steps", "10", "--delta",
        "1e-5", "--conversion", "loose"},
       "loose"},
      {{"noise", "--target-epsilon", "-1", "--sample-rate", "0.01", "--steps", "10", "--delta",
        "1e-5"},
       "--target-epsilon must be positive"},
      {{"noise", "--target-epsilon", "1", "--sample-rate", "0.01", "--steps", "0", "--delta",
        "1e-5"},
       "--steps must be >= 1"},
      {{"noise", "--target-epsilon", "1", "--sample-rate", "0.01", "--steps", "10"},
       "--delta is required"},
  };
  for (const Case& c : cases) {
    Outcome outcome = Privacy(c.args);
    EXPECT_EQ(outcome.exit_code, kExitUsage) << c.message;
    EXPECT_THAT(outcome.err, HasSubstr(c.message));
  }
}

TEST(PrivacyCommandsTest, AnUnreachableBudgetFails) {
  Outcome outcome = Privacy({"noise", "--target-epsilon", "1e-9", "--sample-rate", "0.5", "--steps",
                             "1000000", "--delta", "1e-5"});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, HasSubstr("cannot be met"));
}

TEST(PrivacyCommandsTest, EveryCommandAndFlagExplainsItself) {
  CLI::App app{"fedmi"};
  GlobalOptions global;
  CommandResult result;
  AddPrivacyCommands(app, global, result);
  CLI::App* privacy = app.get_subcommand("privacy");
  EXPECT_FALSE(privacy->get_description().empty());
  for (const char* name : {"epsilon", "noise"}) {
    CLI::App* command = privacy->get_subcommand(name);
    EXPECT_FALSE(command->get_description().empty()) << name;
    for (const CLI::Option* option : command->get_options()) {
      EXPECT_FALSE(option->get_description().empty()) << name << " " << option->get_name();
    }
    EXPECT_THAT(command->help(), HasSubstr("ceil(N / B) * epochs"));
  }
}

}  // namespace
}  // namespace fedmi::cli
