#include "cli/model_files.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/ml/explain.h"
#include "client/ml/mobile_model.h"
#include "common/base/cpu_share.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/data/image_data.h"
#include "common/runspec/transfer.h"
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
  // Files written before runs had an input size hold 28 x 28 x 1 models;
  // a U-Net without its shape has the default one.
  for (auto [key, value] : {std::pair{"image_size", &config.height},
                            {"channels", &config.channels},
                            {"unet_base_width", &config.base_width},
                            {"unet_depth", &config.depth}}) {
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
// With `with_masks`, the masks too (a segmentation model's truth).
absl::StatusOr<ImageSet> LoadSplitForModel(const ml::ModelConfig& config, const std::string& path,
                                           const std::string& split, bool with_masks = false) {
  SiteDataOptions geometry;
  geometry.height = config.height;
  geometry.width = config.width;
  geometry.channels = config.channels;
  geometry.with_masks = with_masks;
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

// A directory of its own under the system's temp directory, removed with
// everything in it when this goes out of scope.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fedmi-explain-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("cannot create a temp directory like ", pattern));
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The rows `request` names (or the first `limit`) of `split`.
absl::StatusOr<std::vector<int64_t>> ChosenRows(const ExplainRequest& request, int64_t rows) {
  std::vector<int64_t> chosen = request.indices;
  if (chosen.empty()) {
    for (int64_t i = 0; i < std::min(request.limit, rows); ++i) chosen.push_back(i);
  }
  if (chosen.empty()) return absl::InvalidArgumentError("no images to explain");
  for (int64_t index : chosen) {
    if (index < 0 || index >= rows) {
      return absl::InvalidArgumentError(absl::StrCat("index ", index, " is outside the ",
                                                     request.split, " split's ", rows, " images"));
    }
  }
  return chosen;
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
                                                      const std::string& split, bool with_masks) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(model_path));
  ModelFilePredictions result;
  // A .ptl runs in the lite interpreter, anything else as a LocalModel;
  // both predict alike from here on.
  std::unique_ptr<ml::MobileModel> mobile;
  LoadedModelFile loaded;
  if (kind == ModelFileKind::kMobile) {
    ASSIGN_OR_RETURN(mobile, ml::MobileModel::Load(model_path));
    result.metadata = mobile->metadata();
  } else {
    ASSIGN_OR_RETURN(loaded, LoadModelFileWithMetadata(model_path));
    result.metadata = std::move(loaded.metadata);
  }
  const ml::ModelConfig& config = mobile ? mobile->config() : loaded.model->config();
  const bool segmentation = mobile ? mobile->is_segmentation() : loaded.model->is_segmentation();
  ASSIGN_OR_RETURN(ImageSet data,
                   LoadSplitForModel(config, npz_path, split, segmentation && with_masks));
  ASSIGN_OR_RETURN(result.predictions,
                   mobile ? mobile->Predict(data) : loaded.model->Predict(data));
  if (segmentation) {
    result.labels = data.labels;
    result.images = std::move(data);
    return result;
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
  if (!file.predictions.masks.empty()) {
    ModelEvaluation evaluation;
    SegmentationCounts counts;
    const ImageSet& truth = file.images;
    const int64_t plane = truth.height * truth.width;
    for (int64_t i = 0; i < truth.size(); ++i) {
      counts.AddImage(file.predictions.masks.data() + i * plane, truth.masks.data() + i * plane,
                      truth.height, truth.width);
    }
    evaluation.segmentation = counts;
    evaluation.loss = file.predictions.loss;
    evaluation.predictions.metadata = std::move(file.metadata);
    return evaluation;
  }
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
  if (threads > 0) {
    ml::SetThreads(threads);
  } else if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    // Every CPU this process may use (affinity, cgroup quota), not LibTorch's
    // own default, which Debian's build sets to one thread; OMP_NUM_THREADS,
    // when set, is LibTorch's to honour.
    ml::SetThreads(AllowedCpus());
  }
}

namespace {

// The model `info` describes, holding `weights`: its architecture rebuilt,
// or the run's model file loaded.
absl::StatusOr<std::unique_ptr<ml::LocalModel>> ModelWithWeights(const TensorBundle& weights,
                                                                 const ModelFileInfo& info) {
  ml::ModelConfig config;
  config.arch = info.arch;
  config.num_classes = info.num_classes;
  config.height = config.width = info.image_size;
  config.channels = info.channels;
  config.seed = info.seed;
  config.base_width = info.unet_base_width;
  config.depth = info.unet_depth;
  std::unique_ptr<ml::LocalModel> model;
  if (info.arch == kCustomModel) {
    ASSIGN_OR_RETURN(
        model, ml::LocalModel::LoadUserModule(info.model_file_bytes, config, info.segmentation));
  } else {
    ASSIGN_OR_RETURN(model, ml::LocalModel::Create(config));
  }
  RETURN_IF_ERROR(model->ImportWeights(weights));
  return model;
}

}  // namespace

absl::Status TorchModelRunner::WriteTorchScript(const std::string& path,
                                                const TensorBundle& weights,
                                                const ModelFileInfo& info) {
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ModelWithWeights(weights, info));
  return model->SaveTorchScript(path, TorchScriptMetadata(info));
}

absl::StatusOr<TensorBundle> TorchModelRunner::ReadWeights(const std::string& path) {
  return ml::ReadTorchScriptWeights(path);
}

absl::Status TorchModelRunner::WriteMobileModel(const std::string& path,
                                                const TensorBundle& weights,
                                                const ModelFileInfo& info, bool quantize_int8) {
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, ModelWithWeights(weights, info));
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

absl::StatusOr<std::map<std::string, std::string>> TorchModelRunner::ReadModelMetadata(
    const std::string& path) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (!Env::Default()->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("model file ", path, " does not exist"));
  }
  std::map<std::string, std::string> metadata;
  ml::ModelConfig config;
  if (kind == ModelFileKind::kMobile) {
    ASSIGN_OR_RETURN(std::unique_ptr<ml::MobileModel> mobile, ml::MobileModel::Load(path));
    metadata = mobile->metadata();
    config = mobile->config();
  } else {
    ASSIGN_OR_RETURN(LoadedModelFile loaded, LoadModelFileWithMetadata(path));
    metadata = std::move(loaded.metadata);
    config = loaded.model->config();
  }
  metadata["arch"] = config.arch;
  metadata["num_classes"] = absl::StrCat(config.num_classes);
  metadata["image_size"] = absl::StrCat(config.height);
  metadata["channels"] = absl::StrCat(config.channels);
  return metadata;
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
  ASSIGN_OR_RETURN(ModelFilePredictions file,
                   PredictModelFile(model_path, npz_path, split, /*with_masks=*/false));
  if (!file.predictions.masks.empty()) {
    SplitPredictions result;
    result.labels = std::move(file.labels);
    result.masks = std::move(file.predictions.masks);
    result.images = std::move(file.images);
    result.metadata = std::move(file.metadata);
    return result;
  }
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

absl::StatusOr<SplitExplanations> TorchModelRunner::ExplainSplit(const ExplainRequest& request) {
  ml::ExplainOptions options;
  ASSIGN_OR_RETURN(options.method, ml::ParseCamMethod(request.method));
  options.layer = request.layer;
  options.target_class = request.target_class;
  options.progress = request.progress;
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(request.model_path));
  // Explanations run TorchScript files. A .safetensors model, and a fedmi
  // .pt saved before models named their layers (config, but no
  // forward_with_feature), are rebuilt by this fedmi and saved as one first.
  std::string script_path = request.model_path;
  std::optional<TempDir> temp;
  bool rebuild = kind == ModelFileKind::kSafetensors;
  if (!rebuild) {
    ASSIGN_OR_RETURN(ml::ExplainableModelInfo info, ml::DescribeExplainableModel(script_path));
    rebuild = info.layers.empty() && info.height.has_value();
  }
  if (rebuild) {
    ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> loaded, LoadModelFile(request.model_path));
    // A loaded .pt keeps its own module; a fresh one has this fedmi's methods.
    ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model,
                     ml::LocalModel::Create(loaded->config()));
    ASSIGN_OR_RETURN(TensorBundle weights, loaded->ExportWeights());
    RETURN_IF_ERROR(model->ImportWeights(weights));
    ASSIGN_OR_RETURN(TempDir dir, TempDir::Create());
    temp.emplace(std::move(dir));
    script_path = temp->path() + "/model.pt";
    RETURN_IF_ERROR(model->SaveTorchScript(script_path));
  }
  ASSIGN_OR_RETURN(ml::ExplainableModelInfo info, ml::DescribeExplainableModel(script_path));
  SiteDataOptions geometry;
  geometry.height = info.height.value_or(request.image_size);
  geometry.width = info.width.value_or(request.image_size);
  geometry.channels = info.channels.value_or(request.channels);
  ASSIGN_OR_RETURN(ImageSet split, LoadDataSplit(request.data_path, request.split, geometry));
  ASSIGN_OR_RETURN(std::vector<int64_t> rows, ChosenRows(request, split.size()));

  SplitExplanations result;
  result.images = SelectRows(split, rows);
  const ImageSet& images = result.images;
  ASSIGN_OR_RETURN(ml::CamResult cams, ml::ExplainModelFile(script_path, images, options));
  result.layer = cams.layer;
  result.method = ml::CamMethodName(options.method);
  for (size_t i = 0; i < rows.size(); ++i) {
    ml::ImageCam& cam = cams.images[i];
    ExplainedImage image;
    image.index = rows[i];
    image.label = images.labels[i];
    image.target_class = cam.target_class;
    image.probability = cam.probability;
    image.heatmap = std::move(cam.heatmap);
    if (cam.peak.has_value()) {
      image.peak = ExplainedPeak{cam.peak->row, cam.peak->col, cam.peak->value};
    }
    image.finite = cam.finite;
    result.explained.push_back(std::move(image));
  }
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

absl::StatusOr<ImageEmbeddings> TorchModelRunner::EmbedImages(const std::string& model_path,
                                                              const ImageSet& images) {
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, LoadModelFile(model_path));
  ml::ScoreOptions options;
  options.embeddings = true;
  ASSIGN_OR_RETURN(ml::ImageScores scores, model->Score(images, options));
  return ImageEmbeddings{scores.embedding_dim, std::move(scores.embeddings)};
}

}  // namespace fedmi::cli
