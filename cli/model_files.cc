#include "cli/model_files.h"

#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
absl::StatusOr<ImageSet> LoadSplitForModel(const ml::LocalModel& model, const std::string& path,
                                           const std::string& split) {
  SiteDataOptions geometry;
  geometry.height = model.config().height;
  geometry.width = model.config().width;
  geometry.channels = model.config().channels;
  return LoadDataSplit(path, split, geometry);
}

}  // namespace

absl::Status WriteModelFile(const std::string& path, const TensorBundle& weights,
                            const ModelFileInfo& info) {
  TorchModelRunner runner;
  return WriteModelFile(path, weights, info, &runner);
}

absl::StatusOr<LoadedModelFile> LoadModelFileWithMetadata(const std::string& path) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
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
  evaluation.predictions.labels = data.labels;
  evaluation.predictions.prob_positive = std::move(predictions.prob_positive);
  return evaluation;
}

absl::StatusOr<ModelEvaluation> EvaluateModelOnSplit(const std::string& model_path,
                                                     const std::string& npz_path,
                                                     const std::string& split, double threshold) {
  ASSIGN_OR_RETURN(LoadedModelFile loaded, LoadModelFileWithMetadata(model_path));
  ASSIGN_OR_RETURN(ImageSet data, LoadSplitForModel(*loaded.model, npz_path, split));
  ASSIGN_OR_RETURN(ModelEvaluation evaluation, EvaluateModel(*loaded.model, data, threshold));
  evaluation.predictions.metadata = std::move(loaded.metadata);
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

absl::StatusOr<ModelEvaluation> TorchModelRunner::EvaluateOnSplit(const std::string& model_path,
                                                                  const std::string& npz_path,
                                                                  const std::string& split,
                                                                  double threshold) {
  return EvaluateModelOnSplit(model_path, npz_path, split, threshold);
}

absl::StatusOr<SplitPredictions> TorchModelRunner::PredictSplit(const std::string& model_path,
                                                                const std::string& npz_path,
                                                                const std::string& split) {
  ASSIGN_OR_RETURN(LoadedModelFile loaded, LoadModelFileWithMetadata(model_path));
  ASSIGN_OR_RETURN(ImageSet data, LoadSplitForModel(*loaded.model, npz_path, split));
  ASSIGN_OR_RETURN(ml::Predictions predictions, loaded.model->Predict(data));
  if (predictions.prob_positive.size() != data.labels.size()) {
    return absl::InternalError(absl::StrCat("model gave ", predictions.prob_positive.size(),
                                            " predictions for ", data.labels.size(), " images"));
  }
  SplitPredictions result;
  result.labels = std::move(data.labels);
  result.prob_positive = std::move(predictions.prob_positive);
  result.metadata = std::move(loaded.metadata);
  return result;
}

absl::StatusOr<int64_t> TorchModelRunner::ParameterCount(const std::string& arch, int64_t channels,
                                                         int64_t num_classes, int64_t side) {
  ml::ModelConfig config;
  config.arch = arch;
  config.channels = channels;
  config.num_classes = num_classes;
  config.height = config.width = side;
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ml::LocalModel::Create(config));
  return model->ParameterCount();
}

}  // namespace fedmi::cli
