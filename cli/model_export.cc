#include "cli/model_export.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/admin_client.h"
#include "cli/model_card.h"
#include "cli/model_runner.h"
#include "common/base/build_info.h"
#include "common/base/env.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/model_file_format.h"
#include "common/runspec/strategy_names.h"
#include "common/runspec/training_recipe.h"
#include "common/runspec/transfer.h"
#include "common/tensor/bundle_transfer.h"
#include "common/tensor/safetensors.h"

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
  if (absl::EndsWith(path, ".ptl")) return ModelFileKind::kMobile;
  return absl::InvalidArgumentError(
      absl::StrCat("model file '", path,
                   "' must end in .pt (TorchScript), .safetensors (weights with metadata) or .ptl "
                   "(mobile, PyTorch lite interpreter)"));
}

absl::StatusOr<ExportFormat> ResolveExportFormat(const std::string& out, const std::string& format,
                                                 const std::string& quantize) {
  struct Known {
    const char* name;
    ModelFileKind kind;
    const char* extension;
  };
  constexpr Known kFormats[] = {{"pt", ModelFileKind::kTorchScript, ".pt"},
                                {"safetensors", ModelFileKind::kSafetensors, ".safetensors"},
                                {"mobile", ModelFileKind::kMobile, ".ptl"}};
  ExportFormat result;
  if (format.empty()) {
    ASSIGN_OR_RETURN(result.kind, ModelFileKindOf(out));
  } else {
    const Known* known = nullptr;
    for (const Known& candidate : kFormats) {
      if (format == candidate.name) known = &candidate;
    }
    if (known == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown format '", format, "'; use pt, safetensors or mobile"));
    }
    if (!absl::EndsWith(out, known->extension)) {
      return absl::InvalidArgumentError(absl::StrCat("--format ", format, " writes a ",
                                                     known->extension, " file, and '", out,
                                                     "' does not end in ", known->extension));
    }
    result.kind = known->kind;
  }
  if (quantize == "int8") {
    if (result.kind != ModelFileKind::kMobile) {
      return absl::InvalidArgumentError(
          "--quantize int8 applies to mobile files (--format mobile, --out *.ptl); .pt and "
          ".safetensors files keep float weights");
    }
    result.quantize_int8 = true;
  } else if (!quantize.empty() && quantize != "none") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown quantization '", quantize, "'; use int8 or none"));
  }
  return result;
}

std::map<std::string, std::string> SafetensorsMetadata(const ModelFileInfo& info) {
  std::map<std::string, std::string> metadata = {{"arch", info.arch},
                                                 {"num_classes", absl::StrCat(info.num_classes)},
                                                 {"run", absl::StrCat(info.run_id)},
                                                 {"round", absl::StrCat(info.round)},
                                                 {"image_size", absl::StrCat(info.image_size)},
                                                 {"channels", absl::StrCat(info.channels)},
                                                 {"fedmi_version", GetBuildInfo().version}};
  if (info.arch == kUNetModel) {
    // The effective shape, so that a reader needs no knowledge of defaults.
    metadata["unet_base_width"] =
        absl::StrCat(info.unet_base_width != 0 ? info.unet_base_width : kUNetDefaultBaseWidth);
    metadata["unet_depth"] =
        absl::StrCat(info.unet_depth != 0 ? info.unet_depth : kUNetDefaultDepth);
  }
  metadata.insert(info.metadata.begin(), info.metadata.end());
  metadata[kModelCardMetadataKey] = ModelCardOf(info).dump();
  return metadata;
}

std::map<std::string, std::string> TorchScriptMetadata(const ModelFileInfo& info) {
  std::map<std::string, std::string> metadata = info.metadata;
  metadata[kModelCardMetadataKey] = ModelCardOf(info).dump();
  return metadata;
}

std::vector<std::string> SplitClassNames(const std::string& text) {
  if (text.empty()) return {};
  std::vector<std::string> names;
  for (absl::string_view name : absl::StrSplit(text, ',')) {
    names.emplace_back(absl::StripAsciiWhitespace(name));
  }
  return names;
}

absl::Status CheckClassNames(const std::vector<std::string>& names, int64_t num_classes) {
  if (names.empty()) return absl::OkStatus();
  if (static_cast<int64_t>(names.size()) != num_classes) {
    return absl::InvalidArgumentError(absl::StrCat("--class-names gives ", names.size(),
                                                   " names for a model of ", num_classes,
                                                   " classes; give one per class, in index order"));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--class-names: class ", i, " has no name"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (names[j] == names[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat("--class-names: '", names[i], "' names both class ", j, " and class ", i));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// Whether `site`'s update reached its round's aggregate: sites that only
// evaluated the round sent no update (no hash).
bool ContributedUpdate(const v1::SiteParticipation& site) {
  const auto state = ParseParticipationState(site.state());
  return (state == ParticipationState::kUploaded || state == ParticipationState::kEvaluated) &&
         !site.update_sha256().empty();
}

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
      contributors[stored.round() - 1] += ContributedUpdate(site);
    }
  }
  return PrivacyMetadataOf(run.spec(), round, contributors);
}

std::map<std::string, std::string> RoundThresholdMetadata(const v1::RunStatus& run, int32_t round) {
  for (const v1::RoundStatus& stored : run.rounds()) {
    if (stored.round() != round || !stored.eval_metrics().has_operating_threshold()) continue;
    const v1::Metrics& metrics = stored.eval_metrics();
    OperatingPoint point;
    point.threshold = metrics.operating_threshold();
    point.rule = ThresholdRuleOf(run.spec());
    std::map<std::string, std::string> metadata = OperatingThresholdMetadata(point);
    // On the federation's validation data, where it was chosen.
    metadata["operating_sensitivity"] = absl::StrFormat("%.17g", metrics.operating_sensitivity());
    metadata["operating_specificity"] = absl::StrFormat("%.17g", metrics.operating_specificity());
    return metadata;
  }
  return {};
}

absl::Status CheckModelFileWritable(const std::string& path, const ModelRunner* runner) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (kind == ModelFileKind::kSafetensors || runner != nullptr) return absl::OkStatus();
  absl::Status refused =
      TrainingUnavailableError(kind == ModelFileKind::kMobile ? "fedmi model export --out *.ptl"
                                                              : "fedmi model export --out *.pt");
  return absl::Status(refused.code(),
                      absl::StrCat(refused.message(), "; export to .safetensors instead"));
}

absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info, ModelRunner* runner) {
  ASSIGN_OR_RETURN(ExportFormat format, ResolveExportFormat(path, "", ""));
  return WriteModelFile(path, weights, info, format, runner);
}

absl::Status WriteModelFile(const std::string& path, const TensorBundle& bundle,
                            const ModelFileInfo& info, const ExportFormat& format,
                            ModelRunner* runner) {
  RETURN_IF_ERROR(CheckModelFileWritable(path, runner));
  // A SCAFFOLD run's control variates travel with its models but are no
  // part of the network a hospital deploys.
  std::vector<std::string> weight_names;
  for (const TensorSpec& spec : bundle.specs) {
    if (!IsScaffoldControl(spec.name)) weight_names.push_back(spec.name);
  }
  ASSIGN_OR_RETURN(const TensorBundle weights, SelectTensors(bundle, weight_names));
  switch (format.kind) {
    case ModelFileKind::kSafetensors:
      return WriteSafetensors(path, weights, SafetensorsMetadata(info));
    case ModelFileKind::kMobile:
      return runner->WriteMobileModel(path, weights, info, format.quantize_int8);
    case ModelFileKind::kTorchScript:
      break;
  }
  return runner->WriteTorchScript(path, weights, info);
}

absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, ModelRunner* runner, std::string* summary) {
  ASSIGN_OR_RETURN(ExportFormat format, ResolveExportFormat(out, "", ""));
  return ExportModelToFile(admin, run_id, round, out, format, runner, summary);
}

absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, const ExportFormat& format,
                               ModelRunner* runner, std::string* summary) {
  RETURN_IF_ERROR(CheckModelFileWritable(out, runner));
  ASSIGN_OR_RETURN(v1::RunStatus run, admin.GetRun(run_id));
  int32_t exported_round = round;
  ASSIGN_OR_RETURN(TensorBundle weights, admin.ExportModel(run_id, round, &exported_round));
  return WriteRunModelFile(run, exported_round, weights, out, format, runner, summary);
}

namespace {

// The model file run `run` trained, read from `path` and checked against
// the run's hash.
absl::StatusOr<std::string> ReadRunModelFile(const v1::RunStatus& run, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run ", run.run_id(), " trained a model file (sha256 ", run.spec().model_file_sha256(),
        "): give it with --model-file to write a .pt or .ptl, or export .safetensors"));
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  const std::string sha256 = HexEncode(Sha256::Digest(bytes));
  if (sha256 != run.spec().model_file_sha256()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " has sha256 ", sha256, ", but run ",
                                                   run.run_id(), " trained ",
                                                   run.spec().model_file_sha256()));
  }
  return bytes;
}

// Fills in what the model card says of the run: its spec, how many sites
// contributed up to `round`, and the round's validation metrics and time.
void DescribeRun(const v1::RunStatus& run, int32_t round, ModelFileInfo* info) {
  info->spec_sha256 = HexEncode(run.spec_sha256());
  // Specs stored before strategies were named mean FedAvg.
  info->strategy = run.spec().strategy().empty() ? kFedAvgStrategy : run.spec().strategy();
  info->secure_aggregation = run.spec().secure_aggregation();
  info->created_unix = round == 0 ? run.created_at() : 0;
  std::set<std::string> sites;
  for (const v1::RoundStatus& stored : run.rounds()) {
    if (stored.round() < 1 || stored.round() > round) continue;
    for (const v1::SiteParticipation& site : stored.sites()) {
      if (ContributedUpdate(site)) sites.insert(site.site());
    }
    if (stored.round() != round) continue;
    info->created_unix = stored.finished_at();
    if (stored.eval_metrics().examples() > 0) info->validation = stored.eval_metrics();
  }
  info->sites = static_cast<int64_t>(sites.size());
}

}  // namespace

absl::Status WriteRunModelFile(const v1::RunStatus& run, int32_t exported_round,
                               const TensorBundle& weights, const std::string& out,
                               const ExportFormat& format, ModelRunner* runner,
                               std::string* summary) {
  const int64_t run_id = run.run_id();
  ModelFileInfo info;
  info.arch = run.spec().model();
  info.num_classes = run.spec().num_classes() > 0 ? run.spec().num_classes() : 2;
  info.run_id = run_id;
  info.round = exported_round;
  info.image_size = InputImageSize(run.spec());
  info.channels = InputChannels(run.spec());
  info.seed = run.spec().seed();
  info.unet_base_width = run.spec().unet().base_width();
  info.unet_depth = run.spec().unet().depth();
  info.metadata = PrivacyMetadata(run, exported_round);
  info.metadata.merge(RoundThresholdMetadata(run, exported_round));
  info.segmentation = run.spec().task() == v1::MODEL_TASK_SEGMENTATION;
  RETURN_IF_ERROR(CheckClassNames(format.class_names, info.num_classes));
  info.class_names = format.class_names;
  DescribeRun(run, exported_round, &info);
  if (info.arch == kCustomModel && format.kind != ModelFileKind::kSafetensors) {
    ASSIGN_OR_RETURN(info.model_file_bytes, ReadRunModelFile(run, format.model_file));
  }
  RETURN_IF_ERROR(WriteModelFile(out, weights, info, format, runner));

  if (summary != nullptr) {
    std::string file_sha256;
    uint64_t file_bytes = 0;
    RETURN_IF_ERROR(HashFile(out, &file_sha256, &file_bytes));
    *summary = absl::StrCat(
        "wrote ", out, ": run ", run_id, " round ", exported_round, " (", info.arch,
        format.quantize_int8 ? ", int8 linear layers" : "", "), ", weights.specs.size(),
        " tensors, ", file_bytes, " bytes\n  file sha256:    ", HexEncode(file_sha256),
        "\n  weights sha256: ",
        HexEncode(Sha256::Digest(absl::string_view(weights.body.data(), weights.body.size()))));
  }
  return absl::OkStatus();
}

}  // namespace fedmi::cli
