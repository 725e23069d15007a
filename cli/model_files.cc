#include "cli/model_files.h"

#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/ml/mobile_model.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/data/image_data.h"
#include "common/tensor/safetensors.h"

namespace fedmi::cli {
namespace {

absl::StatusOr<LoadedModelFile> LoadSafetensorsModel(const std::string& path) {
  LoadedModelFile loaded;
  std::map<std::string, std::string>& metadata = loaded.metadata;
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
  // Files written before runs had an input size hold 28 x 28 x 1 models.
  for (auto [key, value] :
       {std::pair{"image_size", &config.height}, {"channels", &config.channels}}) {
    auto it = metadata.find(key);
    if (it != metadata.end() && !absl::SimpleAtoi(it->second, value)) {
      return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, " has ", key, " '",
                                                     it->second, "', not an integer"));
    }
  }
  config.width = config.height;
  ASSIGN_OR_RETURN(loaded.model, ml::LocalModel::Create(config));
  if (absl::Status status = loaded.model->ImportWeights(weights); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("weights in ", path, " do not fit a '",
                                                   config.arch, "' model: ", status.message()));
  }
  return loaded;
}

// The split at the model's own input geometry, from any source
// LoadDataSplit reads (npz, image folder, DICOM folder).
absl::StatusOr<ImageSet> LoadSplitForModel(const ml::ModelConfig& config, const std::string& path,
                                           const std::string& split) {
  SiteDataOptions geometry;
  geometry.height = config.height;
  geometry.width = config.width;
  geometry.channels = config.channels;
  return LoadDataSplit(path, split, geometry);
}

absl::Status CheckBinaryLabels(const ImageSet& data) {
  if (data.size() == 0) return absl::InvalidArgumentError("no examples to evaluate on");
  for (int64_t label : data.labels) {
    if (label != 0 && label != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("evaluation needs binary labels (0 or 1), found label ", label));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelEvaluation> EvaluatePredictions(std::vector<int64_t> labels,
                                                    ml::Predictions predictions, double threshold) {
  ModelEvaluation evaluation;
  ASSIGN_OR_RETURN(evaluation.metrics,
                   ComputeBinaryMetrics(labels, predictions.prob_positive, threshold));
  evaluation.loss = predictions.loss;
  evaluation.predictions.labels = std::move(labels);
  evaluation.predictions.prob_positive = std::move(predictions.prob_positive);
  return evaluation;
}

ml::MobileQuantization MobileQuantizationOf(bool quantize_int8) {
  return quantize_int8 ? ml::MobileQuantization::kDynamicInt8 : ml::MobileQuantization::kNone;
}

}  // namespace

absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info) {
  TorchModelRunner runner;
  return WriteModelFile(path, weights, info, &runner);
}

absl::StatusOr<LoadedModelFile> LoadModelFileWithMetadata(const std::string& path) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (kind == ModelFileKind::kMobile) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is a mobile model: it can only predict, not be trained or re-exported"));
  }
  if (!Env::Default()->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("model file ", path, " does not exist"));
  }
  if (kind == ModelFileKind::kSafetensors) return LoadSafetensorsModel(path);
  LoadedModelFile loaded;
  ASSIGN_OR_RETURN(loaded.model, ml::LocalModel::LoadTorchScript(path));
  ASSIGN_OR_RETURN(loaded.metadata, loaded.model->Metadata());
  return loaded;
}

absl::StatusOr<std::unique_ptr<ml::LocalModel>> LoadModelFile(const std::string& path) {
  ASSIGN_OR_RETURN(LoadedModelFile loaded, LoadModelFileWithMetadata(path));
  return std::move(loaded.model);
}

absl::StatusOr<ModelEvaluation> EvaluateModel(ml::LocalModel& model, const ImageSet& data,
                                              double threshold) {
  RETURN_IF_ERROR(CheckBinaryLabels(data));
  ASSIGN_OR_RETURN(ml::Predictions predictions, model.Predict(data));
  return EvaluatePredictions(data.labels, std::move(predictions), threshold);
}

absl::StatusOr<ModelFilePredictions> PredictModelFile(const std::string& model_path,
                                                      const std::string& npz_path,
                                                      const std::string& split) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(model_path));
  ModelFilePredictions result;
  ImageSet data;
  if (kind == ModelFileKind::kMobile) {
    ASSIGN_OR_RETURN(std::unique_ptr<ml::MobileModel> model, ml::MobileModel::Load(model_path));
    ASSIGN_OR_RETURN(data, LoadSplitForModel(model->config(), npz_path, split));
    ASSIGN_OR_RETURN(result.predictions, model->Predict(data));
    result.metadata = model->metadata();
  } else {
    ASSIGN_OR_RETURN(LoadedModelFile loaded, LoadModelFileWithMetadata(model_path));
    ASSIGN_OR_RETURN(data, LoadSplitForModel(loaded.model->config(), npz_path, split));
    ASSIGN_OR_RETURN(result.predictions, loaded.model->Predict(data));
    result.metadata = std::move(loaded.metadata);
  }
  if (result.predictions.predicted.size() != data.labels.size()) {
    return absl::InternalError(absl::StrCat("model gave ", result.predictions.predicted.size(),
                                            " predictions for ", data.labels.size(), " images"));
  }
  result.labels = std::move(data.labels);
  return result;
}

absl::StatusOr<ModelEvaluation> EvaluateModelOnSplit(const std::string& model_path,
                                                     const std::string& npz_path,
                                                     const std::string& split, double threshold) {
  ASSIGN_OR_RETURN(ModelFilePredictions file, PredictModelFile(model_path, npz_path, split));
  ImageSet labels_only;
  labels_only.labels = file.labels;
  RETURN_IF_ERROR(CheckBinaryLabels(labels_only));
  ASSIGN_OR_RETURN(
      ModelEvaluation evaluation,
      EvaluatePredictions(std::move(file.labels), std::move(file.predictions), threshold));
  evaluation.predictions.metadata = std::move(file.metadata);
  return evaluation;
}

absl::Status ExportModelToFile(AdminClient& admin, int64_t run_id, int32_t round,
                               const std::string& out, std::string* summary) {
  TorchModelRunner runner;
  return ExportModelToFile(admin, run_id, round, out, &runner, summary);
}

void TorchModelRunner::SetThreads(int threads) {
  if (threads > 0) ml::SetThreads(threads);
}

absl::Status TorchModelRunner::WriteTorchScript(const std::string& path,
                                                const TensorBundle& weights,
                                                const ModelFileInfo& info) {
  ml::ModelConfig config;
  config.arch = info.arch;
  config.num_classes = info.num_classes;
  config.height = config.width = info.image_size;
  config.channels = info.channels;
  config.seed = info.seed;
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ml::LocalModel::Create(config));
  RETURN_IF_ERROR(model->ImportWeights(weights));
  return model->SaveTorchScript(path, info.metadata);
}

absl::StatusOr<TensorBundle> TorchModelRunner::ReadWeights(const std::string& path) {
  return ml::ReadTorchScriptWeights(path);
}

absl::Status TorchModelRunner::WriteMobileModel(const std::string& path,
                                                const TensorBundle& weights,
                                                const ModelFileInfo& info, bool quantize_int8) {
  ml::ModelConfig config;
  config.arch = info.arch;
  config.num_classes = info.num_classes;
  config.height = config.width = info.image_size;
  config.channels = info.channels;
  config.seed = info.seed;
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ml::LocalModel::Create(config));
  RETURN_IF_ERROR(model->ImportWeights(weights));
  return model->SaveForMobile(path, SafetensorsMetadata(info), MobileQuantizationOf(quantize_int8));
}

absl::Status TorchModelRunner::ConvertToMobile(const std::string& model_path,
                                               const std::string& out, bool quantize_int8) {
  ASSIGN_OR_RETURN(ModelFileKind out_kind, ModelFileKindOf(out));
  if (out_kind != ModelFileKind::kMobile) {
    return absl::InvalidArgumentError(absl::StrCat("'", out, "' must end in .ptl"));
  }
  ASSIGN_OR_RETURN(LoadedModelFile loaded, LoadModelFileWithMetadata(model_path));
  return loaded.model->SaveForMobile(out, loaded.metadata, MobileQuantizationOf(quantize_int8));
}

absl::StatusOr<ModelEvaluation> TorchModelRunner::EvaluateOnSplit(const std::string& model_path,
                                                                  const std::string& npz_path,
                                                                  const std::string& split,
                                                                  double threshold) {
  return EvaluateModelOnSplit(model_path, npz_path, split, threshold);
}

absl::StatusOr<SplitPredictions> TorchModelRunner::PredictSplit(const std::string& model_path,
                                                                const std::string& npz_path,
                                                                const std::string& split) {
  ASSIGN_OR_RETURN(ModelFilePredictions file, PredictModelFile(model_path, npz_path, split));
  if (file.predictions.prob_positive.size() != file.labels.size()) {
    return absl::InternalError(absl::StrCat("model gave ", file.predictions.prob_positive.size(),
                                            " probabilities for ", file.labels.size(),
                                            " images (is it a binary model?)"));
  }
  SplitPredictions result;
  result.labels = std::move(file.labels);
  result.prob_positive = std::move(file.predictions.prob_positive);
  result.metadata = std::move(file.metadata);
  return result;
}

}  // namespace fedmi::cli
