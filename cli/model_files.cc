#include "cli/model_files.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/data/image_data.h"
#include "common/tensor/safetensors.h"

// The build may pass the project version; keep in step with CMakeLists.txt.
#ifndef FEDMI_VERSION
#define FEDMI_VERSION "0.1.0"
#endif

namespace fedmi::cli {
namespace {

bool FileExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

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

absl::StatusOr<std::unique_ptr<ml::LocalModel>> LoadSafetensorsModel(const std::string& path) {
  std::map<std::string, std::string> metadata;
  ASSIGN_OR_RETURN(TensorBundle weights, ReadSafetensors(path, &metadata));
  auto arch = metadata.find("arch");
  auto num_classes = metadata.find("num_classes");
  if (arch == metadata.end() || num_classes == metadata.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors file ", path,
                     " lacks the 'arch' and 'num_classes' metadata needed to rebuild the model "
                     "(files from `fedmi model export` have them)"));
  }
  ml::ModelConfig config;
  config.arch = arch->second;
  if (!absl::SimpleAtoi(num_classes->second, &config.num_classes)) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, " has num_classes '",
                                                   num_classes->second, "', not an integer"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ml::LocalModel::Create(config));
  if (absl::Status status = model->ImportWeights(weights); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("weights in ", path, " do not fit a '",
                                                   config.arch, "' model: ", status.message()));
  }
  return model;
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
  return {{"arch", info.arch},
          {"num_classes", absl::StrCat(info.num_classes)},
          {"run", absl::StrCat(info.run_id)},
          {"round", absl::StrCat(info.round)},
          {"fedmi_version", FEDMI_VERSION}};
}

absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (kind == ModelFileKind::kSafetensors) {
    return WriteSafetensors(path, weights, SafetensorsMetadata(info));
  }
  ml::ModelConfig config;
  config.arch = info.arch;
  config.num_classes = info.num_classes;
  config.seed = info.seed;
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ml::LocalModel::Create(config));
  RETURN_IF_ERROR(model->ImportWeights(weights));
  return model->SaveTorchScript(path);
}

absl::StatusOr<std::unique_ptr<ml::LocalModel>> LoadModelFile(const std::string& path) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (!FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("model file ", path, " does not exist"));
  }
  if (kind == ModelFileKind::kSafetensors) return LoadSafetensorsModel(path);
  return ml::LocalModel::LoadTorchScript(path);
}

absl::StatusOr<ModelEvaluation> EvaluateModel(ml::LocalModel& model, const ImageSet& data,
                                              double threshold) {
  if (data.size() == 0) return absl::InvalidArgumentError("no examples to evaluate on");
  for (int64_t label : data.labels) {
    if (label != 0 && label != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("evaluation needs binary labels (0 or 1), found label ", label));
    }
  }
  ASSIGN_OR_RETURN(ml::Predictions predictions, model.Predict(data));
  ModelEvaluation evaluation;
  ASSIGN_OR_RETURN(evaluation.metrics,
                   ComputeBinaryMetrics(data.labels, predictions.prob_positive, threshold));
  evaluation.loss = predictions.loss;
  return evaluation;
}

absl::StatusOr<ModelEvaluation> EvaluateModelOnSplit(const std::string& model_path,
                                                     const std::string& npz_path,
                                                     const std::string& split, double threshold) {
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, LoadModelFile(model_path));
  ASSIGN_OR_RETURN(ImageSet data, LoadNpzSplit(npz_path, split));
  return EvaluateModel(*model, data, threshold);
}

absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, std::string* summary) {
  RETURN_IF_ERROR(ModelFileKindOf(out).status());
  ASSIGN_OR_RETURN(v1::RunStatus run, admin.GetRun(run_id));
  int32_t exported_round = round;
  ASSIGN_OR_RETURN(TensorBundle weights, admin.ExportModel(run_id, round, &exported_round));

  ModelFileInfo info;
  info.arch = run.spec().model();
  info.num_classes = run.spec().num_classes() > 0 ? run.spec().num_classes() : 2;
  info.run_id = run_id;
  info.round = exported_round;
  info.seed = run.spec().seed();
  RETURN_IF_ERROR(WriteModelFile(out, weights, info));

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
