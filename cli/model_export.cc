#include "cli/model_export.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/admin_client.h"
#include "cli/model_runner.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "common/tensor/safetensors.h"

// The build may pass the project version; keep in step with CMakeLists.txt.
#ifndef FEDMI_VERSION
#define FEDMI_VERSION "0.1.0"
#endif

namespace fedmi::cli {
namespace {

// SHA-256 and size of a whole file, read in blocks.
absl::Status HashFile(const std::string& path, std::string* sha256, uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read back ", path));
  Sha256 hasher;
  std::vector<char> block(1 << 20);
  *size = 0;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    hasher.Update(block.data(), static_cast<size_t>(got));
    *size += static_cast<uint64_t>(got);
  }
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read back ", path));
  *sha256 = hasher.Final();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelFileKind> ModelFileKindOf(const std::string& path) {
  if (absl::EndsWith(path, ".pt")) return ModelFileKind::kTorchScript;
  if (absl::EndsWith(path, ".safetensors")) return ModelFileKind::kSafetensors;
  return absl::InvalidArgumentError(
      absl::StrCat("model file '", path,
                   "' must end in .pt (TorchScript) or .safetensors (weights with metadata)"));
}

std::map<std::string, std::string> SafetensorsMetadata(const ModelFileInfo& info) {
  std::map<std::string, std::string> metadata = {{"arch", info.arch},
                                                 {"num_classes", absl::StrCat(info.num_classes)},
                                                 {"run", absl::StrCat(info.run_id)},
                                                 {"round", absl::StrCat(info.round)},
                                                 {"fedmi_version", FEDMI_VERSION}};
  metadata.insert(info.privacy.begin(), info.privacy.end());
  metadata.insert(info.operating_threshold.begin(), info.operating_threshold.end());
  return metadata;
}

namespace {

std::map<std::string, std::string> PrivacyMetadataOf(const v1::RunSpec& spec, int32_t round,
                                                     const std::vector<int>& contributors) {
  if (!HasDifferentialPrivacy(spec)) return {};
  const v1::DpSettings& dp = spec.dp();
  auto spent = privacy::EpsilonOfRounds(dp, contributors);
  // 17 significant digits: the number reads back exactly.
  auto number = [](double value) { return absl::StrFormat("%.17g", value); };
  std::map<std::string, std::string> metadata = {
      {"dp_level", DpLevelName(dp.level())},
      {"dp_mechanism", dp.level() == v1::DP_LEVEL_SAMPLE
                           ? "DP-SGD: Poisson-sampled Gaussian, per-example clipping"
                           : "DP-FedAvg: Gaussian noise on clipped site updates"},
      {"dp_epsilon", spent.ok() ? number(spent->epsilon) : "unknown"},
      {"dp_delta", number(dp.delta())},
      {"dp_target_epsilon", number(dp.target_epsilon())},
      {"dp_noise_multiplier", number(dp.noise_multiplier())},
      {"dp_clip_norm", number(dp.clip_norm())},
      {"dp_sample_rate", number(dp.sample_rate())},
      {"dp_steps_per_round", absl::StrCat(dp.steps_per_round())},
      {"dp_rounds", absl::StrCat(round)},
      {"dp_accountant", "RDP (Mironov et al. 2019), tight conversion (Balle et al. 2020)"}};
  if (dp.level() == v1::DP_LEVEL_SITE) {
    metadata["dp_noise_placement"] = DpNoisePlacementName(dp.noise_placement());
    metadata["dp_expected_sites"] = absl::StrCat(dp.expected_sites());
  }
  return metadata;
}

}  // namespace

std::map<std::string, std::string> PrivacyMetadata(const v1::RunSpec& spec, int32_t round) {
  // Every round as planned, with every expected site.
  return PrivacyMetadataOf(
      spec, round, std::vector<int>(std::max(0, round), std::max(1, spec.dp().expected_sites())));
}

std::map<std::string, std::string> PrivacyMetadata(const v1::RunStatus& run, int32_t round) {
  std::vector<int> contributors(std::max(0, round), 0);
  for (const v1::RoundStatus& stored : run.rounds()) {
    if (stored.round() < 1 || stored.round() > round) continue;
    for (const v1::SiteParticipation& site : stored.sites()) {
      const auto state = ParseParticipationState(site.state());
      // Sites that only evaluated the round sent no update (no hash).
      contributors[stored.round() - 1] +=
          (state == ParticipationState::kUploaded || state == ParticipationState::kEvaluated) &&
          !site.update_sha256().empty();
    }
  }
  return PrivacyMetadataOf(run.spec(), round, contributors);
}

absl::Status CheckModelFileWritable(const std::string& path, const ModelRunner* runner) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (kind == ModelFileKind::kSafetensors || runner != nullptr) return absl::OkStatus();
  absl::Status refused = TrainingUnavailableError("fedmi model export --out *.pt");
  return absl::Status(refused.code(),
                      absl::StrCat(refused.message(), "; export to .safetensors instead"));
}

absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info, ModelRunner* runner) {
  RETURN_IF_ERROR(CheckModelFileWritable(path, runner));
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (kind == ModelFileKind::kSafetensors) {
    return WriteSafetensors(path, weights, SafetensorsMetadata(info));
  }
  return runner->WriteTorchScript(path, weights, info);
}

absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, ModelRunner* runner, std::string* summary) {
  RETURN_IF_ERROR(CheckModelFileWritable(out, runner));
  ASSIGN_OR_RETURN(v1::RunStatus run, admin.GetRun(run_id));
  int32_t exported_round = round;
  ASSIGN_OR_RETURN(TensorBundle weights, admin.ExportModel(run_id, round, &exported_round));

  ModelFileInfo info;
  info.arch = run.spec().model();
  info.num_classes = run.spec().num_classes() > 0 ? run.spec().num_classes() : 2;
  info.run_id = run_id;
  info.round = exported_round;
  info.seed = run.spec().seed();
  info.privacy = PrivacyMetadata(run, exported_round);
  RETURN_IF_ERROR(WriteModelFile(out, weights, info, runner));

  if (summary != nullptr) {
    std::string file_sha256;
    uint64_t file_bytes = 0;
    RETURN_IF_ERROR(HashFile(out, &file_sha256, &file_bytes));
    *summary = absl::StrCat(
        "wrote ", out, ": run ", run_id, " round ", exported_round, " (", info.arch, "), ",
        weights.specs.size(), " tensors, ", file_bytes,
        " bytes\n  file sha256:    ", HexEncode(file_sha256), "\n  weights sha256: ",
        HexEncode(Sha256::Digest(absl::string_view(weights.body.data(), weights.body.size()))));
  }
  return absl::OkStatus();
}

}  // namespace fedmi::cli
