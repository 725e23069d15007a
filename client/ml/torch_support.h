// Internal to fedmi_ml: the LibTorch glue local_model.cc and dp_sgd.cc
// share. Includes LibTorch; only fedmi_ml's own translation units (and its
// tests) may include it.
#ifndef FEDMI_CLIENT_ML_TORCH_SUPPORT_H_
#define FEDMI_CLIENT_ML_TORCH_SUPPORT_H_

#include <torch/script.h>

#include <algorithm>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"
#include "common/runspec/model_file_format.h"

namespace fedmi::ml {

// Runs `body`, turning the exceptions LibTorch throws into a Status that
// names the operation.
template <typename Body>
auto CatchTorch(const std::string& operation, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(operation, ": out of memory: ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(operation, ": LibTorch error: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(operation, ": ", e.what()));
  }
}

// Views (no copy) of a data set's pixels as N,H,W,C uint8 and labels as N.
// Both alias `data`, which must outlive them and is never written through.
inline torch::Tensor PixelView(const ImageSet& data) {
  return torch::from_blob(const_cast<uint8_t*>(data.pixels.data()),
                          {data.size(), data.height, data.width, data.channels}, torch::kUInt8);
}
inline torch::Tensor LabelView(const ImageSet& data) {
  return torch::from_blob(const_cast<int64_t*>(data.labels.data()), {data.size()}, torch::kInt64);
}

// uint8 N,H,W,C -> float N,C,H,W scaled to [-1, 1]
// (common/runspec/model_file_format.h).
inline torch::Tensor ToModelInput(const torch::Tensor& pixels) {
  return pixels.permute({0, 3, 1, 2})
      .to(torch::kFloat32)
      .div_(kPixelScale)
      .sub_(kInputMean)
      .div_(kInputStd)
      .contiguous();
}

// InvalidArgument when `data` does not fit `config`: another geometry,
// pixel bytes that do not match, labels outside [0, num_classes) unless
// the labels are not read (scoring unlabelled images).
inline absl::Status CheckImages(const ImageSet& data, const ModelConfig& config,
                                bool labels_read = true) {
  if (data.size() == 0) return absl::InvalidArgumentError("data set is empty");
  if (data.height != config.height || data.width != config.width ||
      data.channels != config.channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "images are ", data.height, "x", data.width, "x", data.channels,
        " (HxWxC) but the model expects ", config.height, "x", config.width, "x", config.channels));
  }
  if (static_cast<int64_t>(data.pixels.size()) != data.size() * data.ImageBytes()) {
    return absl::InvalidArgumentError(absl::StrCat("data set has ", data.pixels.size(),
                                                   " pixel bytes for ", data.size(), " images of ",
                                                   data.ImageBytes(), " bytes"));
  }
  for (int64_t i = 0; labels_read && i < data.size(); ++i) {
    const int64_t label = data.labels[i];
    if (label < 0 || label >= config.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("label ", label, " of example ", i,
                                                     " is outside [0, ", config.num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

// Runs `forward` (float N,C,H,W on `device` -> logits N,num_classes) over
// `data` in batches without gradients: P(class 1) for binary tasks, argmax
// class and mean cross-entropy. `data` must have passed CheckImages.
inline Predictions PredictInBatches(
    const ImageSet& data, int64_t num_classes, torch::Device device, int batch_size,
    const std::function<torch::Tensor(const torch::Tensor&)>& forward) {
  torch::NoGradGuard no_grad;
  const torch::Tensor pixels = PixelView(data);
  const torch::Tensor labels = LabelView(data);
  const int64_t n = data.size();
  Predictions predictions;
  predictions.predicted.reserve(n);
  if (num_classes == 2) predictions.prob_positive.reserve(n);
  double loss_sum = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    torch::Tensor x = ToModelInput(pixels.slice(0, start, end)).to(device);
    torch::Tensor y = labels.slice(0, start, end).to(device);
    torch::Tensor logits = forward(x);
    loss_sum +=
        torch::cross_entropy_loss(logits, y, /*weight=*/{}, at::Reduction::Sum).item<double>();
    torch::Tensor predicted = logits.argmax(1).to(torch::kCPU);
    predictions.predicted.insert(predictions.predicted.end(), predicted.data_ptr<int64_t>(),
                                 predicted.data_ptr<int64_t>() + predicted.numel());
    if (num_classes == 2) {
      torch::Tensor prob = torch::softmax(logits, 1).select(1, 1).to(torch::kCPU).contiguous();
      predictions.prob_positive.insert(predictions.prob_positive.end(), prob.data_ptr<float>(),
                                       prob.data_ptr<float>() + prob.numel());
    }
  }
  predictions.loss = loss_sum / static_cast<double>(n);
  return predictions;
}

// The federated strategies' changes to each step's gradients, applied
// between backward() and the optimizer's step: FedProx's proximal term
// mu * (w - w0) and SCAFFOLD's offset c - c_i (TrainOptions).
class GradientCorrection {
 public:
  // `params` and their wire `names` are the trained parameters. w0 is taken
  // now, so call it before the first step. InvalidArgument when the offset
  // names a tensor that is no trained parameter, or has another shape.
  static absl::StatusOr<GradientCorrection> Create(const std::vector<torch::Tensor>& params,
                                                   const std::vector<std::string>& names,
                                                   double proximal_mu, const TensorBundle& offset,
                                                   torch::Device device) {
    GradientCorrection correction;
    correction.proximal_mu_ = proximal_mu;
    if (proximal_mu == 0 && offset.specs.empty()) return correction;
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> offsets(params.size());
    for (size_t i = 0; i < offset.specs.size(); ++i) {
      const TensorSpec& spec = offset.specs[i];
      const auto found = std::find(names.begin(), names.end(), spec.name);
      if (found == names.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("gradient offset '", spec.name, "' names no trained parameter"));
      }
      const size_t index = static_cast<size_t>(found - names.begin());
      if (spec.dtype != DType::kFloat32 || params[index].sizes().vec() != spec.shape) {
        return absl::InvalidArgumentError(absl::StrCat(
            "gradient offset '", spec.name, "' is not a float32 tensor of its parameter's shape"));
      }
      offsets[index] = torch::from_blob(const_cast<char*>(offset.body.data()) + offset.OffsetOf(i),
                                        params[index].sizes(), torch::kFloat32)
                           .to(device, /*non_blocking=*/false, /*copy=*/true);
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (proximal_mu == 0 && !offsets[i].defined()) continue;
      correction.terms_.push_back(
          {params[i], proximal_mu > 0 ? params[i].detach().clone() : torch::Tensor(), offsets[i]});
    }
    return correction;
  }

  void Apply() const {
    if (terms_.empty()) return;
    torch::NoGradGuard no_grad;
    for (const Term& term : terms_) {
      torch::Tensor grad = term.param.mutable_grad();
      if (!grad.defined()) continue;  // not reached by this batch's loss
      if (term.anchor.defined()) grad.add_(term.param.detach() - term.anchor, proximal_mu_);
      if (term.offset.defined()) grad.add_(term.offset);
    }
  }

 private:
  struct Term {
    torch::Tensor param;
    torch::Tensor anchor;  // w0, with FedProx
    torch::Tensor offset;  // c - c_i, with SCAFFOLD
  };
  double proximal_mu_ = 0;
  std::vector<Term> terms_;
};

// What one optimizer step on a batch reports: its mean loss and how many of
// its units (examples, or pixels for segmentation) it got right.
struct BatchStep {
  double loss = 0;  // mean over the examples it covers
  int64_t correct = 0;
  // Examples `loss` and `correct` cover; -1: the whole batch.
  int64_t counted = -1;
};

// Cross-entropy with each example's term scaled by `example_weight` (on the
// CPU): sum(class weight * weight * ce) / sum(class weight), so that weights
// are absolute. A batch of weight-0 examples teaches nothing, where
// dividing by the weights' own sum would give it full strength again.
struct WeightedLoss {
  torch::Tensor loss;
  torch::Tensor per_example;  // class weight * ce, unweighted by example
  torch::Tensor class_part;   // each example's class weight
};
inline WeightedLoss WeightedCrossEntropy(const torch::Tensor& logits, const torch::Tensor& y,
                                         const c10::optional<torch::Tensor>& class_weight,
                                         const torch::Tensor& example_weight) {
  const torch::Tensor w = example_weight.to(logits.device());
  WeightedLoss result;
  result.per_example = torch::cross_entropy_loss(logits, y, class_weight, at::Reduction::None);
  result.class_part =
      class_weight ? class_weight->index_select(0, y) : torch::ones_like(result.per_example);
  result.loss = (result.per_example * w).sum() / result.class_part.sum().clamp_min(1e-12);
  return result;
}

// A weighted batch's step as the summary reports it: over the examples
// whose index is below `reported_rows` (the labelled ones, when pseudo-
// labelled images follow them) when it is > 0, else over the whole batch.
inline BatchStep ReportedStep(const WeightedLoss& weighted, const torch::Tensor& logits,
                              const torch::Tensor& y, const torch::Tensor& index,
                              int64_t reported_rows) {
  torch::Tensor keep = reported_rows > 0 ? index.lt(reported_rows).to(logits.device())
                                         : torch::ones_like(y, torch::kBool);
  const int64_t counted = keep.sum().item<int64_t>();
  const double class_sum = (weighted.class_part * keep).sum().item<double>();
  BatchStep step;
  step.counted = counted;
  step.loss = class_sum > 0 ? (weighted.per_example * keep).sum().item<double>() / class_sum : 0;
  step.correct = (logits.argmax(1).eq(y) & keep).sum().item<int64_t>();
  return step;
}

// `options.epochs` passes over `n` examples, each in a fresh random order
// from `generator`, in batches of `options.batch_size`: `step` trains on the
// batch of example indices it is given. The summary holds the last epoch's
// mean loss and `correct` over `units_per_epoch`, or over the examples the
// steps counted when they say (BatchStep::counted); `options.progress` hears
// after every batch. Classification and segmentation training share it.
inline TrainSummary RunShuffledEpochs(int64_t n, const TrainOptions& options,
                                      at::Generator& generator, double units_per_epoch,
                                      const std::function<BatchStep(const torch::Tensor&)>& step) {
  TrainSummary summary;
  summary.examples = n;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const torch::Tensor order = torch::randperm(n, generator, torch::kInt64);
    double loss_sum = 0;
    int64_t correct = 0;
    int64_t seen = 0;
    int64_t counted = 0;  // examples the loss and accuracy cover
    bool partial = false;
    for (int64_t start = 0; start < n; start += options.batch_size) {
      const torch::Tensor index = order.slice(0, start, std::min(n, start + options.batch_size));
      const BatchStep result = step(index);
      ++summary.steps;
      const int64_t batch = index.size(0);
      const int64_t covered = result.counted >= 0 ? result.counted : batch;
      partial = partial || result.counted >= 0;
      seen += batch;
      counted += covered;
      loss_sum += result.loss * static_cast<double>(covered);
      correct += result.correct;
      if (options.progress) {
        options.progress(epoch, seen, n, counted > 0 ? loss_sum / static_cast<double>(counted) : 0);
      }
    }
    summary.loss = counted > 0 ? loss_sum / static_cast<double>(counted) : 0;
    summary.accuracy =
        static_cast<double>(correct) / (partial ? std::max<double>(1, counted) : units_per_epoch);
  }
  return summary;
}

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_TORCH_SUPPORT_H_
