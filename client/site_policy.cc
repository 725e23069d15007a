#include "client/site_policy.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_names.h"
#include "common/runspec/strategy_names.h"
#include "common/runspec/training_recipe.h"
#include "common/runspec/transfer.h"

namespace fedmi {
namespace {

constexpr int32_t kMaxLocalEpochsLimit = 1000;  // the coordinator's own upper bound

constexpr const char* kKnownKeys[] = {
    "allowed_models",
    "allowed_spec_sha256",
    "allowed_model_sha256",
    "max_local_epochs",
    "max_image_size",
    "require_secure_aggregation",
    "require_differential_privacy",
    "allow_central_dp_noise",
    "max_epsilon",
    "max_delta",
    "coordinator_fingerprint",
    "min_secagg_peers",
    "min_secagg_threshold_fraction",
    "secagg_training_metrics",
};

absl::Status PolicyDenied(absl::string_view what) {
  return absl::PermissionDeniedError(absl::StrCat(kSitePolicyPrefix, what));
}

std::string Where(const std::string& source, const toml::node& node) {
  const auto line = node.source().begin.line;
  return line > 0 ? absl::StrCat(source, ":", line) : source;
}

absl::Status WrongType(const std::string& source, const toml::node& node, absl::string_view key,
                       absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(Where(source, node), ": site policy key '", key, "' must be ", expected));
}

// Accepts "ab12..." and OpenSSL's "AB:12:..." spelling; returns lower-case hex.
absl::StatusOr<std::string> NormalizeSha256Hex(absl::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' is not a hex SHA-256 (64 hex digits)"));
    }
    hex.push_back(absl::ascii_tolower(c));
  }
  if (hex.size() != 64) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a hex SHA-256 (",
                                                   hex.size(), " hex digits, expected 64)"));
  }
  return hex;
}

absl::StatusOr<std::vector<std::string>> StringArray(const std::string& source,
                                                     const toml::node& node,
                                                     absl::string_view key) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return WrongType(source, node, key, "an array of strings");
  std::vector<std::string> values;
  for (const toml::node& element : *array) {
    const auto* value = element.as_string();
    if (value == nullptr) return WrongType(source, element, key, "an array of strings");
    values.push_back(value->get());
  }
  return values;
}

absl::Status ReadPolicyKey(const std::string& source, const std::string& key,
                           const toml::node& node, SitePolicy* policy) {
  if (key == "allowed_models") {
    ASSIGN_OR_RETURN(policy->allowed_models, StringArray(source, node, key));
    for (const std::string& model : policy->allowed_models) {
      if (model.empty()) return WrongType(source, node, key, "an array of model names");
    }
  } else if (key == "allowed_spec_sha256" || key == "allowed_model_sha256") {
    ASSIGN_OR_RETURN(std::vector<std::string> pins, StringArray(source, node, key));
    std::vector<std::string>& list =
        key == "allowed_spec_sha256" ? policy->allowed_spec_sha256 : policy->allowed_model_sha256;
    list.clear();
    for (const std::string& pin : pins) {
      auto hex = NormalizeSha256Hex(pin);
      if (!hex.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(Where(source, node), ": site policy key '",
                                                       key, "': ", hex.status().message()));
      }
      list.push_back(*std::move(hex));
    }
  } else if (key == "max_local_epochs") {
    const auto* value = node.as_integer();
    if (value == nullptr || value->get() < 1 || value->get() > kMaxLocalEpochsLimit) {
      return WrongType(source, node, key,
                       absl::StrCat("an integer between 1 and ", kMaxLocalEpochsLimit));
    }
    policy->max_local_epochs = static_cast<int32_t>(value->get());
  } else if (key == "max_image_size") {
    const auto* value = node.as_integer();
    if (value == nullptr || value->get() < kMinImageSize || value->get() > kMaxImageSize) {
      return WrongType(source, node, key,
                       absl::StrCat("an integer between ", kMinImageSize, " and ", kMaxImageSize));
    }
    policy->max_image_size = static_cast<int32_t>(value->get());
  } else if (key == "require_secure_aggregation" || key == "require_differential_privacy" ||
             key == "allow_central_dp_noise") {
    const auto* value = node.as_boolean();
    if (value == nullptr) return WrongType(source, node, key, "true or false");
    (key == "require_secure_aggregation"     ? policy->require_secure_aggregation
     : key == "require_differential_privacy" ? policy->require_differential_privacy
                                             : policy->allow_central_dp_noise) = value->get();
  } else if (key == "max_epsilon" || key == "max_delta") {
    const std::optional<double> value = node.value<double>();
    const bool is_delta = key == "max_delta";
    if (!value.has_value() || !(*value > 0) || (is_delta && *value >= 1) ||
        !std::isfinite(*value)) {
      return WrongType(source, node, key,
                       is_delta ? "a number between 0 and 1 (exclusive)" : "a positive number");
    }
    if (is_delta) {
      policy->max_delta = *value;
    } else {
      policy->max_epsilon = *value;
    }
  } else if (key == "min_secagg_peers") {
    const auto* value = node.as_integer();
    if (value == nullptr || value->get() < 2 || value->get() > 1000) {
      return WrongType(source, node, key, "an integer between 2 and 1000");
    }
    policy->secagg_floor.min_peers = static_cast<int>(value->get());
  } else if (key == "min_secagg_threshold_fraction") {
    // Below one half, a coordinator that splits the survivors could collect
    // both secrets of a site from honest neighbours.
    const std::optional<double> value = node.value<double>();
    if (!value.has_value() || *value < 0.5 || *value >= 1.0) {
      return WrongType(source, node, key, "a number from 0.5 up to (not including) 1");
    }
    policy->secagg_floor.min_threshold_fraction = *value;
  } else if (key == "secagg_training_metrics") {
    const auto* value = node.as_string();
    if (value == nullptr || (value->get() != "withhold" && value->get() != "share")) {
      return WrongType(source, node, key, "\"withhold\" or \"share\"");
    }
    policy->share_training_metrics_with_secagg = value->get() == "share";
  } else if (key == "coordinator_fingerprint") {
    const auto* value = node.as_string();
    if (value == nullptr) return WrongType(source, node, key, "a string");
    policy->coordinator_fingerprint.clear();
    if (!value->get().empty()) {
      auto hex = NormalizeSha256Hex(value->get());
      if (!hex.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(Where(source, node), ": site policy key '",
                                                       key, "': ", hex.status().message()));
      }
      policy->coordinator_fingerprint = *std::move(hex);
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, node), ": unknown site policy key '", key,
                     "' (known keys: ", absl::StrJoin(kKnownKeys, ", "), ")"));
  }
  return absl::OkStatus();
}

std::string ListForMessage(const std::vector<std::string>& values) {
  return absl::StrCat("[", absl::StrJoin(values, ", "), "]");
}

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

absl::StatusOr<SitePolicy> SitePolicy::Parse(absl::string_view text, const std::string& source) {
  toml::table table;
  try {
    table = toml::parse(std::string_view(text.data(), text.size()), source);
  } catch (const toml::parse_error& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", error.source().begin.line,
                     ": TOML syntax error: ", std::string(error.description())));
  }
  SitePolicy policy = Defaults();
  for (const auto& [key, node] : table) {
    RETURN_IF_ERROR(ReadPolicyKey(source, std::string(key.str()), node, &policy));
  }
  return policy;
}

absl::StatusOr<SitePolicy> SitePolicy::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read site policy file '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read site policy file '", path, "'"));
  }
  return Parse(text.str(), path);
}

namespace {

// What this site runs is DP-SGD or nothing: a level it does not implement,
// or settings that do not match what it would run, are refused here, before
// any data is touched, whatever the coordinator accepted.
// Site level: what this site adds and how it is accounted must follow from
// the spec it approved (the round's admission is checked against it again
// when the round is secure: SiteSecAgg::MaskUpdate).
absl::Status CheckSiteDpSettings(const SitePolicy& policy, const v1::RunSpec& spec) {
  const v1::DpSettings& dp = spec.dp();
  if (dp.noise_placement() == v1::DP_NOISE_CENTRAL && !policy.allow_central_dp_noise) {
    return PolicyDenied(
        "the run's site-level DP noise is added by the coordinator, so this site's update would "
        "leave without noise; set allow_central_dp_noise = true to trust it");
  }
  if (dp.adaptive_clipping() && dp.noise_placement() != v1::DP_NOISE_CENTRAL) {
    return PolicyDenied(
        "the run asks for adaptive clipping with distributed noise, which this site does not "
        "implement (the count of sites within the clip is noised centrally)");
  }
  if (dp.sample_rate() != 1) {
    return PolicyDenied(absl::StrCat(
        "site-level DP is accounted with every round's sites as chosen (sample rate 1); the run "
        "says ",
        dp.sample_rate()));
  }
  if (dp.expected_sites() < 1) {
    return PolicyDenied("the run's site-level DP settings name no expected_sites");
  }
  if (dp.noise_placement() == v1::DP_NOISE_DISTRIBUTED && !spec.secure_aggregation()) {
    return PolicyDenied(
        "distributed DP noise without secure aggregation would show the coordinator this site's "
        "update with only its share of the noise");
  }
  if (dp.noise_placement() == v1::DP_NOISE_DISTRIBUTED &&
      spec.secagg().clip() < privacy::MinSecAggClipForSiteNoise(dp)) {
    return PolicyDenied(absl::StrCat("the run's secagg clip ", spec.secagg().clip(),
                                     " would clamp this site's noise share; it needs at least ",
                                     privacy::MinSecAggClipForSiteNoise(dp)));
  }
  return absl::OkStatus();
}

absl::Status CheckDpSettings(const SitePolicy& policy, const v1::RunSpec& spec) {
  const v1::DpSettings& dp = spec.dp();
  if (dp.level() == v1::DP_LEVEL_NONE) return absl::OkStatus();
  if (dp.level() == v1::DP_LEVEL_SITE) return CheckSiteDpSettings(policy, spec);
  if (dp.level() != v1::DP_LEVEL_SAMPLE) {
    return PolicyDenied(absl::StrCat("the run asks for differential privacy level ", dp.level(),
                                     ", which this site does not know"));
  }
  if (!IsDpCompatibleModel(spec.model())) {
    return PolicyDenied(absl::StrCat("model '", spec.model(),
                                     "' is not DP-compatible (it normalises over the batch)"));
  }
  const int64_t steps = DpStepsPerRound(spec.local_epochs(), dp.sample_rate());
  if (steps <= 0 || dp.steps_per_round() != steps) {
    return PolicyDenied(absl::StrCat("the run's DP steps per round (", dp.steps_per_round(),
                                     ") are not local_epochs x ceil(1 / sample_rate) (", steps,
                                     ")"));
  }
  return absl::OkStatus();
}

// Without max_epsilon, requiring DP still bounds epsilon: a guarantee
// weaker than this says little.
constexpr double kRequiredDpMaxEpsilon = 10;

absl::Status CheckPrivacyBudget(const SitePolicy& policy, const v1::RunSpec& spec) {
  RETURN_IF_ERROR(CheckDpSettings(policy, spec));
  const v1::DpSettings& dp = spec.dp();
  if (HasDifferentialPrivacy(spec) && dp.delta() > policy.max_delta) {
    return PolicyDenied(
        absl::StrCat("the run's delta ", dp.delta(), " exceeds max_delta ", policy.max_delta));
  }
  const std::optional<double> max_epsilon =
      policy.max_epsilon
          ? policy.max_epsilon
          : (policy.require_differential_privacy ? std::optional<double>(kRequiredDpMaxEpsilon)
                                                 : std::nullopt);
  if (!max_epsilon) return absl::OkStatus();
  if (!HasDifferentialPrivacy(spec)) {
    return PolicyDenied(absl::StrCat("this site allows at most epsilon ", *max_epsilon,
                                     "; the run has no differential privacy, so no bound"));
  }
  // The plan as this site computes it from the spec, not as the coordinator says.
  auto planned = privacy::PatientEpsilonAfterRounds(dp, spec.rounds());
  if (!planned.ok()) return PolicyDenied(planned.status().message());
  if (planned->epsilon > *max_epsilon) {
    return PolicyDenied(absl::StrFormat(
        "the run plans epsilon %s%s at delta %g over %d rounds, past this site's max_epsilon %g",
        FormatEpsilon(planned->epsilon),
        dp.level() == v1::DP_LEVEL_SITE ? " per patient (the run's is per site)" : "", dp.delta(),
        spec.rounds(), *max_epsilon));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SitePolicy::Check(const v1::RunSpec& spec) const {
  if (!spec.model_file_sha256().empty() || spec.model() == kCustomModel) {
    // A model file is code that will run on this site's data: only the
    // exact files the site has read and listed. A listed hash beside a
    // built-in architecture would build that architecture instead, past
    // allowed_models.
    if (spec.model() != kCustomModel) {
      return PolicyDenied(absl::StrCat("a model file goes with model '", kCustomModel, "', not '",
                                       spec.model(), "'"));
    }
    if (!Contains(allowed_model_sha256, spec.model_file_sha256())) {
      return PolicyDenied(absl::StrCat("model file sha256 ", spec.model_file_sha256(),
                                       " is not in allowed_model_sha256"));
    }
  } else if (!Contains(allowed_models, spec.model())) {
    return PolicyDenied(absl::StrCat("model '", spec.model(), "' is not in allowed_models ",
                                     ListForMessage(allowed_models)));
  }
  if (spec.local_epochs() > max_local_epochs) {
    return PolicyDenied(absl::StrCat("local_epochs ", spec.local_epochs(),
                                     " exceeds max_local_epochs ", max_local_epochs));
  }
  if (InputImageSize(spec) > max_image_size) {
    return PolicyDenied(absl::StrCat("image_size ", InputImageSize(spec),
                                     " exceeds max_image_size ", max_image_size));
  }
  if (require_secure_aggregation && !spec.secure_aggregation()) {
    return PolicyDenied("this site requires secure aggregation; the run has it off");
  }
  if (require_differential_privacy && !HasDifferentialPrivacy(spec)) {
    return PolicyDenied("this site requires differential privacy; the run has it off");
  }
  RETURN_IF_ERROR(CheckPrivacyBudget(*this, spec));
  if (!allowed_spec_sha256.empty()) {
    const std::string sha = RunSpecSha256Hex(spec);
    if (!Contains(allowed_spec_sha256, sha)) {
      return PolicyDenied(absl::StrCat("run spec sha256 ", sha, " is not in allowed_spec_sha256"));
    }
  }
  return absl::OkStatus();
}

std::string RunSpecSha256Hex(const v1::RunSpec& spec) {
  return HexEncode(Sha256::Digest(spec.SerializeAsString()));
}

std::string DescribeRunSpec(const v1::RunSpec& spec, const std::string& spec_sha256,
                            const std::string& coordinator) {
  auto on_off = [](bool on) { return on ? "on" : "off"; };
  std::string text;
  absl::StrAppendFormat(&text, "  coordinator          %s\n",
                        coordinator.empty() ? "(unknown)" : coordinator);
  absl::StrAppendFormat(&text, "  spec sha256          %s\n", spec_sha256);
  absl::StrAppendFormat(&text, "  model                %s", spec.model());
  if (spec.model() == "synthetic") {
    absl::StrAppendFormat(&text, " (%d parameters, touches no data)", spec.synthetic_params());
  }
  if (spec.model() == kUNetModel) {
    // Its shape sets the memory training takes here and each update's size.
    absl::StrAppendFormat(
        &text, " (base width %d, depth %d)",
        spec.unet().base_width() != 0 ? spec.unet().base_width() : kUNetDefaultBaseWidth,
        spec.unet().depth() != 0 ? spec.unet().depth() : kUNetDefaultDepth);
  }
  absl::StrAppendFormat(&text, ", %d classes\n", spec.num_classes());
  if (!spec.model_file_sha256().empty()) {
    absl::StrAppendFormat(
        &text, "  model file sha256    %s (%s)\n", spec.model_file_sha256(),
        spec.task() == v1::MODEL_TASK_SEGMENTATION ? "segmentation" : "classification");
  }
  const v1::TransferSettings& transfer = spec.transfer();
  if (!transfer.init_weights_sha256().empty()) {
    absl::StrAppendFormat(
        &text, "  initial weights      sha256 %s%s\n", transfer.init_weights_sha256(),
        transfer.init_allow_partial() ? " (partial: unmatched tensors start fresh)" : "");
  }
  if (!transfer.freeze_prefixes().empty()) {
    absl::StrAppendFormat(&text, "  frozen               %s %s\n",
                          absl::StrJoin(transfer.freeze_prefixes(), ", "),
                          transfer.unfreeze_after_round() > 0
                              ? absl::StrCat("(until round ", transfer.unfreeze_after_round(), ")")
                              : std::string("(whole run)"));
  }
  absl::StrAppendFormat(&text, "  rounds               %d (strategy %s, %d to %s sites)\n",
                        spec.rounds(), spec.strategy(), spec.min_sites(),
                        spec.max_sites() > 0 ? absl::StrCat(spec.max_sites()) : "all");
  if (ReadsNormBound(spec.strategy())) {
    absl::StrAppendFormat(&text,
                          "  norm bound           %g (L2; this site clips its change to it)\n",
                          spec.robust().norm_bound());
  }
  absl::StrAppendFormat(&text, "  local epochs         %d per round\n", spec.local_epochs());
  absl::StrAppendFormat(&text, "  batch size           %d\n", spec.batch_size());
  absl::StrAppendFormat(&text, "  learning rate        %g (%s)\n", spec.lr(), spec.optimizer());
  absl::StrAppendFormat(&text, "  seed                 %d\n", spec.seed());
  absl::StrAppendFormat(&text, "  secure aggregation   %s\n", on_off(spec.secure_aggregation()));
  if (spec.secure_aggregation()) {
    const v1::SecAggSettings& secagg = spec.secagg();
    auto or_default = [](auto value, const char* fallback) {
      return value > 0 ? absl::StrCat(value) : std::string(fallback);
    };
    absl::StrAppendFormat(
        &text, "    threshold          %s\n",
        or_default(secagg.threshold(), "default: 2/3 of the neighbours, plus one"));
    absl::StrAppendFormat(&text, "    neighbours         %s\n",
                          or_default(secagg.neighbours(), "default: every other site"));
    absl::StrAppendFormat(&text, "    clip               %s\n",
                          or_default(secagg.clip(), "default: 1"));
    absl::StrAppendFormat(&text, "    max sites          %s\n",
                          or_default(spec.max_sites(), "every connected site"));
  }
  absl::StrAppendFormat(&text, "  differential privacy %s\n", DescribeDp(spec.dp()));
  return text;
}

TerminalApprover::TerminalApprover(std::istream& in, std::ostream& out, std::string approvals_path,
                                   TerminalApproverOptions options)
    : in_(in),
      out_(out),
      approvals_path_(std::move(approvals_path)),
      options_(std::move(options)) {}

absl::StatusOr<std::string> TerminalApprover::ReadApprovalsFile() {
  absl::StatusOr<std::string> text = options_.env->ReadFile(approvals_path_);
  if (absl::IsNotFound(text.status())) return std::string();  // nothing approved yet
  if (!text.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read approvals file '", approvals_path_, "': ", text.status().message()));
  }
  return text;
}

absl::Status TerminalApprover::LoadApprovals() {
  ASSIGN_OR_RETURN(std::string text, ReadApprovalsFile());
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(line);
    if (rest.empty() || rest.front() == '#') continue;
    const std::string token(rest.substr(0, rest.find_first_of(" \t#")));
    // A malformed line is skipped, never treated as approving anything.
    if (auto hex = NormalizeSha256Hex(token); hex.ok()) approved_.insert(*hex);
  }
  return absl::OkStatus();
}

absl::Status TerminalApprover::Remember(const v1::RunSpec& spec, const std::string& spec_sha256) {
  approved_.insert(spec_sha256);
  // Rewritten whole rather than appended to, so that a crash or a full disk
  // never leaves a torn line (or a lost earlier approval) behind.
  ASSIGN_OR_RETURN(std::string contents, ReadApprovalsFile());
  if (!contents.empty() && contents.back() != '\n') contents += '\n';
  absl::StrAppend(&contents, spec_sha256, "  # ", spec.model(), ", ", spec.rounds(), " rounds, ",
                  spec.local_epochs(), " local epochs; approved ",
                  absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::Now(), absl::UTCTimeZone()),
                  "\n");
  absl::Status written = WriteFileAtomically(*options_.env, approvals_path_, contents);
  if (!written.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write approvals file '", approvals_path_, "': ", written.message()));
  }
  return absl::OkStatus();
}

absl::Status TerminalApprover::Approve(const v1::RunSpec& spec, const std::string& spec_sha256) {
  absl::MutexLock lock(&mu_);
  if (approved_.count(spec_sha256) > 0) return absl::OkStatus();
  // Re-read on every unknown spec so that a hash added to the file by hand
  // takes effect without a restart.
  RETURN_IF_ERROR(LoadApprovals());
  if (approved_.count(spec_sha256) > 0) return absl::OkStatus();
  if (rejected_.count(spec_sha256) > 0) {
    return PolicyDenied("rejected by the site operator");
  }
  if (!options_.interactive) {
    return PolicyDenied(absl::StrCat(
        "run spec sha256 ", spec_sha256,
        " awaits the site operator's review, but stdin is not a terminal; run fedmi-client "
        "--review interactively or add the hash to ",
        approvals_path_));
  }
  out_ << "\nA run asks to train on this site's data:\n"
       << DescribeRunSpec(spec, spec_sha256, options_.coordinator)
       << "(answering blocks this site's tasks; Ctrl-C twice quits)\n";
  while (true) {
    out_ << "Run it here? Type yes or no: " << std::flush;
    std::string answer;
    if (!std::getline(in_, answer)) {
      out_ << "\n";
      return PolicyDenied("no answer from the site operator (input closed)");
    }
    answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
    if (answer == "yes") {
      absl::Status saved = Remember(spec, spec_sha256);
      if (saved.ok()) {
        out_ << "approved; recorded in " << approvals_path_ << "\n" << std::flush;
      } else {
        out_ << "approved, but " << saved.message()
             << ": the approval holds only until this daemon restarts\n"
             << std::flush;
      }
      return absl::OkStatus();
    }
    if (answer == "no") {
      rejected_.insert(spec_sha256);
      out_ << "rejected\n" << std::flush;
      return PolicyDenied("rejected by the site operator");
    }
  }
}

}  // namespace fedmi
