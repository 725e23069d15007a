// `fedmi privacy epsilon` and `fedmi privacy noise`: the differential-privacy
// accountant (common/privacy/rdp_accountant.h) on the command line, to plan
// a DP-SGD run before it starts. Needs no coordinator.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/privacy/rdp_accountant.h"

namespace fedmi::cli {
namespace {

using privacy::EpsilonConversion;
using privacy::PrivacySpent;
using privacy::SampledGaussian;

// How much of the data each step sees and how many steps there are: given
// directly, or as epochs over a data set in batches.
struct TrainingShapeFlags {
  double sample_rate = 0;
  int64_t steps = -1;
  int64_t epochs = 0;
  int64_t dataset_size = 0;
  int64_t batch_size = 0;
};

struct EpsilonFlags {
  double noise_multiplier = 0;
  double delta = 0;
  std::string conversion = "tight";
  TrainingShapeFlags shape;
};

struct NoiseFlags {
  double target_epsilon = 0;
  double delta = 0;
  std::string conversion = "tight";
  TrainingShapeFlags shape;
};

struct TrainingShape {
  double sample_rate;
  int64_t steps;
  std::string from_epochs;  // "20 epochs of 50000 records in batches of 256", or empty
};

// The sample rate and step count the flags describe; InvalidArgument naming
// the flag that is missing or out of range.
absl::StatusOr<TrainingShape> ResolveShape(const TrainingShapeFlags& flags) {
  const bool direct = flags.sample_rate != 0 || flags.steps >= 0;
  const bool epochs = flags.epochs != 0 || flags.dataset_size != 0 || flags.batch_size != 0;
  if (direct == epochs) {
    return absl::InvalidArgumentError(
        "give either --sample-rate and --steps, or --epochs, --dataset-size and --batch-size");
  }
  if (direct) {
    if (!(flags.sample_rate > 0 && flags.sample_rate <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sample-rate must be in (0, 1], got ", flags.sample_rate));
    }
    if (flags.steps < 0) return absl::InvalidArgumentError("--steps is required");
    return TrainingShape{flags.sample_rate, flags.steps, ""};
  }
  if (flags.epochs <= 0) return absl::InvalidArgumentError("--epochs must be given and >= 1");
  if (flags.dataset_size <= 0) {
    return absl::InvalidArgumentError("--dataset-size must be given and >= 1");
  }
  if (flags.batch_size <= 0 || flags.batch_size > flags.dataset_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--batch-size must be given, >= 1 and at most --dataset-size (", flags.dataset_size, ")"));
  }
  const int64_t steps_per_epoch = (flags.dataset_size + flags.batch_size - 1) / flags.batch_size;
  return TrainingShape{static_cast<double>(flags.batch_size) / flags.dataset_size,
                       steps_per_epoch * flags.epochs,
                       absl::StrCat(flags.epochs, " epochs of ", flags.dataset_size,
                                    " records in batches of ", flags.batch_size)};
}

absl::Status ValidateDelta(double delta) {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--delta must be in (0, 1), got ", delta));
  }
  return absl::OkStatus();
}

// `x` rounded up to `digits` significant digits, so that a printed noise
// multiplier still meets the target it was calibrated for.
double RoundUpSignificant(double x, int digits) {
  const double scale = std::pow(10.0, digits - 1 - std::floor(std::log10(x)));
  return std::ceil(x * scale) / scale;
}

// "3920 steps at sample rate 0.00512 (20 epochs of ...)".
std::string DescribeSteps(const TrainingShape& shape) {
  std::string text =
      absl::StrFormat("%d steps at sample rate %.6g", shape.steps, shape.sample_rate);
  if (!shape.from_epochs.empty()) absl::StrAppend(&text, " (", shape.from_epochs, ")");
  return text;
}

nlohmann::json SpentJson(const SampledGaussian& mechanism, const PrivacySpent& spent,
                         EpsilonConversion conversion) {
  return {{"epsilon", JsonNumber(spent.epsilon)},
          {"delta", spent.delta},
          {"order", spent.order},
          {"noise_multiplier", mechanism.noise_multiplier},
          {"sample_rate", mechanism.sample_rate},
          {"steps", mechanism.steps},
          {"conversion", privacy::ConversionName(conversion)}};
}

absl::StatusOr<PrivacySpent> SpentBy(const SampledGaussian& mechanism, double delta,
                                     EpsilonConversion conversion) {
  privacy::RdpAccountant accountant;
  if (absl::Status added = accountant.Add(mechanism); !added.ok()) return added;
  return accountant.Spent(delta, conversion);
}

int ShowEpsilon(const GlobalOptions& global, const EpsilonFlags& flags) {
  absl::StatusOr<TrainingShape> shape = ResolveShape(flags.shape);
  if (!shape.ok()) return ReportUsageError(std::string(shape.status().message()));
  if (absl::Status valid = ValidateDelta(flags.delta); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  if (!(flags.noise_multiplier > 0) || !std::isfinite(flags.noise_multiplier)) {
    return ReportUsageError(absl::StrCat(
        "--noise-multiplier must be positive (0 means no noise: epsilon is infinite), got ",
        flags.noise_multiplier));
  }
  const EpsilonConversion conversion = *privacy::ParseConversion(flags.conversion);
  const SampledGaussian mechanism{shape->sample_rate, flags.noise_multiplier, shape->steps};
  absl::StatusOr<PrivacySpent> spent = SpentBy(mechanism, flags.delta, conversion);
  if (!spent.ok()) return ReportError(spent.status());
  if (global.json) {
    PrintJsonLine(SpentJson(mechanism, *spent, conversion));
    return kExitOk;
  }
  std::cout << absl::StrFormat("epsilon %.6g at delta %.6g\n", spent->epsilon, spent->delta)
            << absl::StrFormat("  for %s with noise multiplier %.6g\n", DescribeSteps(*shape),
                               mechanism.noise_multiplier)
            << absl::StrFormat("  best Renyi order %g, %s conversion\n", spent->order,
                               flags.conversion)
            << std::flush;
  return kExitOk;
}

int ShowNoise(const GlobalOptions& global, const NoiseFlags& flags) {
  absl::StatusOr<TrainingShape> shape = ResolveShape(flags.shape);
  if (!shape.ok()) return ReportUsageError(std::string(shape.status().message()));
  if (absl::Status valid = ValidateDelta(flags.delta); !valid.ok()) {
    return ReportUsageError(std::string(valid.message()));
  }
  if (!(flags.target_epsilon > 0) || !std::isfinite(flags.target_epsilon)) {
    return ReportUsageError(
        absl::StrCat("--target-epsilon must be positive, got ", flags.target_epsilon));
  }
  if (shape->steps < 1) return ReportUsageError("--steps must be >= 1 to calibrate noise");
  const EpsilonConversion conversion = *privacy::ParseConversion(flags.conversion);
  absl::StatusOr<double> sigma = privacy::CalibrateNoiseMultiplier(
      flags.target_epsilon, flags.delta, shape->sample_rate, shape->steps, conversion);
  if (!sigma.ok()) return ReportError(sigma.status());
  const SampledGaussian mechanism{shape->sample_rate, RoundUpSignificant(*sigma, 6), shape->steps};
  absl::StatusOr<PrivacySpent> spent = SpentBy(mechanism, flags.delta, conversion);
  if (!spent.ok()) return ReportError(spent.status());
  if (global.json) {
    nlohmann::json json = SpentJson(mechanism, *spent, conversion);
    json["target_epsilon"] = flags.target_epsilon;
    PrintJsonLine(json);
    return kExitOk;
  }
  std::cout << absl::StrFormat(
                   "noise multiplier %.6g keeps epsilon within %.6g at delta %.6g (the smallest, "
                   "rounded up to 6 digits)\n",
                   mechanism.noise_multiplier, flags.target_epsilon, flags.delta)
            << "  for " << DescribeSteps(*shape) << "\n"
            << absl::StrFormat("  it gives epsilon %.6g (best Renyi order %g, %s conversion)\n",
                               spent->epsilon, spent->order, flags.conversion)
            << std::flush;
  return kExitOk;
}

void AddShapeOptions(CLI::App* command, TrainingShapeFlags& flags) {
  CLI::Option* rate = command->add_option(
      "--sample-rate", flags.sample_rate,
      "probability q in (0, 1] that a step samples each record (Poisson sampling)");
  CLI::Option* steps = command->add_option("--steps", flags.steps, "number of noisy steps");
  CLI::Option* epochs = command->add_option(
      "--epochs", flags.epochs,
      "instead of --sample-rate and --steps: passes over the data; with --dataset-size N and "
      "--batch-size B, q = B / N and steps = ceil(N / B) * epochs");
  CLI::Option* size =
      command->add_option("--dataset-size", flags.dataset_size, "records in the data set (N)");
  CLI::Option* batch =
      command->add_option("--batch-size", flags.batch_size, "expected records per batch (B)");
  for (CLI::Option* direct : {rate, steps}) {
    for (CLI::Option* derived : {epochs, size, batch}) direct->excludes(derived);
  }
}

void AddDeltaAndConversion(CLI::App* command, double& delta, std::string& conversion) {
  command->add_option("--delta", delta, "the delta of the (epsilon, delta) guarantee, in (0, 1)")
      ->required();
  command
      ->add_option("--conversion", conversion,
                   "RDP to (epsilon, delta): tight (Balle et al. 2020, as Opacus and "
                   "dp-accounting) or classic (Mironov 2017, looser, as older papers)")
      ->check(CLI::IsMember({"tight", "classic"}))
      ->capture_default_str();
}

}  // namespace

void AddPrivacyCommands(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* privacy = app.add_subcommand(
      "privacy",
      "Differential-privacy accounting for DP-SGD (Renyi DP of the sampled Gaussian "
      "mechanism): the epsilon a run spends, or the noise a budget needs. Needs no coordinator");
  privacy->require_subcommand(1);

  auto epsilon_flags = std::make_shared<EpsilonFlags>();
  CLI::App* epsilon = privacy->add_subcommand(
      "epsilon",
      "The epsilon at --delta after the given steps at --noise-multiplier, and the Renyi "
      "order that gives it");
  epsilon
      ->add_option("--noise-multiplier", epsilon_flags->noise_multiplier,
                   "noise std divided by the clipping norm (sigma > 0)")
      ->required();
  AddShapeOptions(epsilon, epsilon_flags->shape);
  AddDeltaAndConversion(epsilon, epsilon_flags->delta, epsilon_flags->conversion);
  AddJsonFlag(epsilon, global);
  epsilon->callback([&global, &result, epsilon_flags] {
    RunCommand(result, [&] { return ShowEpsilon(global, *epsilon_flags); });
  });

  auto noise_flags = std::make_shared<NoiseFlags>();
  CLI::App* noise = privacy->add_subcommand(
      "noise",
      "The smallest noise multiplier that keeps the given steps within --target-epsilon at "
      "--delta (rounded up to 6 digits), and the epsilon it gives");
  noise
      ->add_option("--target-epsilon", noise_flags->target_epsilon,
                   "the epsilon the whole run may spend (> 0)")
      ->required();
  AddShapeOptions(noise, noise_flags->shape);
  AddDeltaAndConversion(noise, noise_flags->delta, noise_flags->conversion);
  AddJsonFlag(noise, global);
  noise->callback([&global, &result, noise_flags] {
    RunCommand(result, [&] { return ShowNoise(global, *noise_flags); });
  });
}

}  // namespace fedmi::cli
