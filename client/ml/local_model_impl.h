// LocalModel's state, shared by the translation units that implement it
// (local_model.cc, image_scores.cc). Includes LibTorch: only files in
// client/ml/ may include it.
#ifndef FEDMI_CLIENT_ML_LOCAL_MODEL_IMPL_H_
#define FEDMI_CLIENT_ML_LOCAL_MODEL_IMPL_H_

#include <torch/script.h>

#include <string>

#include "client/ml/local_model.h"

namespace fedmi::ml {

struct LocalModel::Impl {
  ModelConfig config;
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  bool segmentation = false;
  // A loaded file's model card (its extra file kModelCardFile), "" if none.
  std::string model_card;

  absl::StatusOr<TrainSummary> Train(const ImageSet& data, const TrainOptions& options);
  absl::StatusOr<Predictions> Predict(const ImageSet& data, int batch_size);
};

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_LOCAL_MODEL_IMPL_H_
