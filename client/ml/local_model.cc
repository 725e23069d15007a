#include "client/ml/local_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/optim.h>
#include <torch/script.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/ml/architectures.h"
#include "client/ml/dp_sgd.h"
#include "client/ml/local_model_impl.h"
#include "client/ml/mobile_model.h"
#include "client/ml/segmentation.h"
#include "client/ml/torch_support.h"
#include "client/ml/training_recipe.h"
#include "common/base/large_buffer.h"
#include "common/base/status.h"
#include "common/runspec/model_file_format.h"
#include "common/runspec/model_names.h"
#include "common/runspec/strategy_names.h"
#include "common/runspec/transfer.h"

namespace fedmi::ml {
namespace {

torch::Device PickDevice() {
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

// The module's kTaskAttribute (segmentation.h), "" when it has none.
std::string TaskAttribute(const torch::jit::Module& module) {
  if (!module.hasattr(kTaskAttribute)) return "";
  const c10::IValue value = module.attr(kTaskAttribute);
  return value.isString() ? value.toStringRef() : "";
}

// Weight n / (k * n_c) for class c, with n examples, k classes and n_c
// examples of class c, so every class contributes equally to the loss.
// Classes absent from the data get a weight that no example uses.
torch::Tensor BalancedClassWeights(const torch::Tensor& labels, int64_t num_classes) {
  const torch::Tensor counts =
      torch::bincount(labels, /*weights=*/{}, num_classes).to(torch::kFloat32);
  return (counts.sum() / (counts.clamp_min(1) * static_cast<double>(num_classes)));
}

// Built-in architectures hold every tensor at the top level; a user's
// module has submodules, whose tensors come with dotted paths. Integer
// buffers (BatchNorm's num_batches_tracked) are no weights: they stay local.
std::vector<std::pair<std::string, torch::Tensor>> WeightsInWireOrder(
    const torch::jit::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const auto& named : module.named_parameters(/*recurse=*/true)) {
    weights.emplace_back(WireName(named.name), named.value);
  }
  for (const auto& named : module.named_buffers(/*recurse=*/true)) {
    if (!named.value.is_floating_point()) continue;
    weights.emplace_back(WireName(named.name), named.value);
  }
  return weights;
}

// Float32 copies, in wire order; the caller catches LibTorch's exceptions.
TensorBundle WeightsBundle(const torch::jit::Module& module) {
  TensorBundle bundle;
  std::vector<torch::Tensor> host;
  for (const auto& [name, tensor] : WeightsInWireOrder(module)) {
    host.push_back(tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous());
    bundle.specs.push_back(TensorSpec{name, DType::kFloat32, tensor.sizes().vec()});
  }
  ReserveLargeBuffer(&bundle.body, bundle.ExpectedBodyBytes());
  for (const torch::Tensor& t : host) {
    const char* values = reinterpret_cast<const char*>(t.data_ptr<float>());
    bundle.body.insert(bundle.body.end(), values, values + t.numel() * sizeof(float));
  }
  return bundle;
}

bool HasPrefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (absl::StartsWith(name, prefix)) return true;
  }
  return false;
}

// The cause of a LibTorch exception without its traceback: the
// interpreter's message ends with it ("RuntimeError: Given groups=1, ...").
std::string CauseOf(const std::string& text) {
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  const size_t newline = trimmed.rfind('\n');
  return newline == std::string::npos ? trimmed : trimmed.substr(newline + 1);
}

// Tries the forward on two blank images, so that a module that cannot
// serve the run is refused before any patient's image reaches it.
absl::Status CheckUserModuleOutput(torch::jit::Module& module, const ModelConfig& config,
                                   bool segmentation, torch::Device device) {
  const std::vector<int64_t> want = segmentation
                                        ? std::vector<int64_t>{2, 1, config.height, config.width}
                                        : std::vector<int64_t>{2, config.num_classes};
  const std::string input = absl::StrCat("a batch of 2 images of ", config.channels, "x",
                                         config.height, "x", config.width);
  const std::string needed =
      absl::StrCat(segmentation ? "a segmentation run needs mask logits of shape "
                                : absl::StrCat("a classification run with ", config.num_classes,
                                               " classes needs logits of shape "),
                   ShapeString(want));
  torch::NoGradGuard no_grad;
  module.eval();
  c10::IValue output;
  try {
    output = module.forward(
        {torch::zeros({2, config.channels, config.height, config.width}).to(device)});
  } catch (const std::exception& e) {
    // The interpreter throws JITException (not a c10::Error) for a failing
    // op inside the module's code.
    module.train();
    return absl::InvalidArgumentError(absl::StrCat("the model file's forward fails on ", input,
                                                   " (", needed, "): ", CauseOf(e.what())));
  }
  module.train();
  if (!output.isTensor()) {
    return absl::InvalidArgumentError(absl::StrCat("the model file's forward returns a ",
                                                   output.tagKind(), ", not a tensor; ", needed));
  }
  const std::vector<int64_t> got = output.toTensor().sizes().vec();
  if (got != want || !output.toTensor().is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat("the model file's forward returns shape ",
                                                   ShapeString(got), " for ", input, "; ", needed));
  }
  return absl::OkStatus();
}

std::vector<TensorSpec> SpecsOf(const torch::jit::Module& module) {
  std::vector<TensorSpec> specs;
  for (const auto& [name, tensor] : WeightsInWireOrder(module)) {
    TensorSpec spec;
    spec.name = name;
    spec.dtype = tensor.scalar_type() == torch::kFloat32 ? DType::kFloat32 : DType::kFloat64;
    spec.shape = tensor.sizes().vec();
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace

std::vector<std::string> ListArchitectures() { return TrainableModelNames(); }

void SetThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

std::string DefaultDevice() { return torch::cuda::is_available() ? "cuda" : "cpu"; }

LocalModel::LocalModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalModel::~LocalModel() = default;

const ModelConfig& LocalModel::config() const { return impl_->config; }

bool LocalModel::is_segmentation() const { return impl_->segmentation; }

absl::StatusOr<std::unique_ptr<LocalModel>> LocalModel::Create(const ModelConfig& config) {
  return CatchTorch("creating model '" + config.arch + "'",
                    [&]() -> absl::StatusOr<std::unique_ptr<LocalModel>> {
                      auto impl = std::make_unique<Impl>();
                      impl->config = config;
                      RETURN_IF_ERROR(BuildArchitecture(config, &impl->module));
                      // What the module stores: defaults (U-Net's width and
                      // depth) filled in.
                      RETURN_IF_ERROR(ReadConfigAttributes(impl->module, &impl->config));
                      impl->segmentation = IsSegmentationModel(impl->config.arch, "");
                      impl->device = PickDevice();
                      impl->module.to(impl->device);
                      return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
                    });
}

absl::StatusOr<std::unique_ptr<LocalModel>> LocalModel::LoadTorchScript(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("no model file at ", path));
  }
  return CatchTorch("loading " + path, [&]() -> absl::StatusOr<std::unique_ptr<LocalModel>> {
    auto impl = std::make_unique<Impl>();
    impl->device = PickDevice();
    torch::jit::ExtraFilesMap extra_files = {{kModelCardFile, ""}};
    try {
      impl->module = torch::jit::load(path, impl->device, extra_files);
    } catch (const c10::Error& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " is not a readable TorchScript archive: ", e.what_without_backtrace()));
    }
    RETURN_IF_ERROR(ReadConfigAttributes(impl->module, &impl->config));
    impl->model_card = std::move(extra_files[kModelCardFile]);
    impl->segmentation = IsSegmentationModel(impl->config.arch, TaskAttribute(impl->module));
    // A user's module is its own reference.
    if (impl->config.arch == kCustomModel) {
      return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
    }
    // The file must hold exactly the weights this build's architecture
    // would create, or bundles exchanged with the federation would not fit.
    torch::jit::Module reference;
    RETURN_IF_ERROR(BuildArchitecture(impl->config, &reference));
    RETURN_IF_ERROR(
        CheckSpecsMatch(SpecsOf(impl->module), SpecsOf(reference), absl::StrCat(path, ":")));
    return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
  });
}

absl::StatusOr<std::unique_ptr<LocalModel>> LocalModel::LoadUserModule(
    const std::string& file_bytes, const ModelConfig& config, bool segmentation) {
  return CatchTorch(
      "loading the run's model file", [&]() -> absl::StatusOr<std::unique_ptr<LocalModel>> {
        auto impl = std::make_unique<Impl>();
        impl->config = config;
        impl->config.arch = kCustomModel;
        impl->device = PickDevice();
        std::istringstream in(file_bytes);
        try {
          impl->module = torch::jit::load(in, impl->device);
        } catch (const c10::Error& e) {
          return absl::InvalidArgumentError(
              absl::StrCat("the model file is not a readable TorchScript archive: ",
                           e.what_without_backtrace()));
        }
        // Every parameter trains unless the run freezes it (a file
        // saved from C++ may not say so).
        for (torch::Tensor p : impl->module.parameters(/*recurse=*/true)) {
          p.requires_grad_(true);
        }
        if (WeightsInWireOrder(impl->module).empty()) {
          return absl::InvalidArgumentError(
              "the model file has no float parameters or buffers to train");
        }
        RETURN_IF_ERROR(
            CheckUserModuleOutput(impl->module, impl->config, segmentation, impl->device));
        if (!impl->module.hasattr("fedmi_arch")) {
          WriteConfigAttributes(impl->config, &impl->module);
        }
        impl->segmentation = segmentation;
        if (impl->module.hasattr(kTaskAttribute)) {
          impl->module.setattr(kTaskAttribute,
                               std::string(segmentation ? kSegmentationTask : "classification"));
        } else if (segmentation) {
          impl->module.register_attribute(kTaskAttribute, c10::StringType::get(),
                                          std::string(kSegmentationTask));
        }
        return std::unique_ptr<LocalModel>(new LocalModel(std::move(impl)));
      });
}

absl::StatusOr<TensorBundle> ReadTorchScriptWeights(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("no model file at ", path));
  }
  return CatchTorch("reading weights from " + path, [&]() -> absl::StatusOr<TensorBundle> {
    torch::jit::Module module;
    try {
      module = torch::jit::load(path, torch::Device(torch::kCPU));
    } catch (const c10::Error& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " is not a readable TorchScript archive: ", e.what_without_backtrace()));
    }
    return WeightsBundle(module);
  });
}

absl::StatusOr<TensorBundle> LocalModel::ExportWeights() const {
  return CatchTorch("exporting weights",
                    [&]() -> absl::StatusOr<TensorBundle> { return WeightsBundle(impl_->module); });
}

absl::Status LocalModel::ImportWeights(const TensorBundle& weights) {
  return CatchTorch("importing weights", [&]() -> absl::Status {
    // SCAFFOLD's control variates follow the weights in a run's bundles.
    size_t weight_count = weights.specs.size();
    while (weight_count > 0 && IsScaffoldControl(weights.specs[weight_count - 1].name)) {
      --weight_count;
    }
    const std::vector<TensorSpec> weight_specs(weights.specs.begin(),
                                               weights.specs.begin() + weight_count);
    RETURN_IF_ERROR(CheckSpecsMatch(weight_specs, SpecsOf(impl_->module), "weights"));
    if (weights.body.size() != weights.ExpectedBodyBytes()) {
      return absl::InvalidArgumentError(absl::StrCat("weights body has ", weights.body.size(),
                                                     " bytes, its tensors need ",
                                                     weights.ExpectedBodyBytes()));
    }
    torch::NoGradGuard no_grad;
    const char* in = weights.body.data();
    for (const auto& [name, tensor] : WeightsInWireOrder(impl_->module)) {
      // from_blob never writes; the copy leaves `weights` untouched.
      torch::Tensor source =
          torch::from_blob(const_cast<char*>(in), tensor.sizes(), torch::kFloat32);
      tensor.detach().copy_(source);
      in += source.numel() * sizeof(float);
    }
    return absl::OkStatus();
  });
}

std::vector<std::string> LocalModel::ParameterNames() const {
  std::vector<std::string> names;
  for (const auto& named : impl_->module.named_parameters(/*recurse=*/true)) {
    names.push_back(WireName(named.name));
  }
  return names;
}

int64_t LocalModel::ParameterCount() const {
  int64_t count = 0;
  for (const torch::Tensor& p : impl_->module.parameters(/*recurse=*/true)) count += p.numel();
  return count;
}

namespace {

// CheckAugmentationOptions, and a shift that leaves some of the image.
absl::Status CheckAugmentationFits(const AugmentationOptions& options, const ImageSet& data) {
  RETURN_IF_ERROR(CheckAugmentationOptions(options));
  if (options.max_shift >= std::min(data.height, data.width)) {
    return absl::InvalidArgumentError(absl::StrCat("augmentation max_shift ", options.max_shift,
                                                   " must be below the image's sides (",
                                                   data.height, "x", data.width, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainSummary> LocalModel::Train(const ImageSet& data, const TrainOptions& options) {
  RETURN_IF_ERROR(CheckImages(data, impl_->config));
  if (impl_->segmentation) {
    RETURN_IF_ERROR(CheckMasks(data));
    if (options.dp) {
      return absl::InvalidArgumentError("DP-SGD is not available for segmentation models");
    }
  }
  if (options.epochs < 1 || options.batch_size < 1 || !(options.lr > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("training needs epochs >= 1, batch_size >= 1 and lr > 0; got ", options.epochs,
                     ", ", options.batch_size, ", ", options.lr));
  }
  if (options.optimizer != "adam" && options.optimizer != "sgd") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown optimizer '", options.optimizer, "'; known: adam, sgd"));
  }
  if (!(options.weight_decay >= 0) || !std::isfinite(options.weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight_decay must be finite and >= 0; got ", options.weight_decay));
  }
  RETURN_IF_ERROR(CheckAugmentationFits(options.augmentation, data));
  if (!(options.proximal_mu >= 0) || !std::isfinite(options.proximal_mu)) {
    return absl::InvalidArgumentError(
        absl::StrCat("proximal_mu must be finite and >= 0; got ", options.proximal_mu));
  }
  if (options.dp && (options.proximal_mu > 0 || !options.gradient_offset.specs.empty())) {
    return absl::InvalidArgumentError(
        "DP-SGD clips and noises the data's gradients alone; FedProx and SCAFFOLD are not "
        "available with it");
  }
  if (options.dp && !options.frozen_prefixes.empty()) {
    return absl::InvalidArgumentError(
        "DP-SGD trains every parameter; frozen parameters are not supported with it");
  }
  if (!options.example_weights.empty()) {
    if (static_cast<int64_t>(options.example_weights.size()) != data.size() || options.dp ||
        impl_->segmentation) {
      return absl::InvalidArgumentError(absl::StrCat(
          "example weights need one weight per image (", options.example_weights.size(), " for ",
          data.size(), "), a classification model and no DP-SGD"));
    }
    for (float weight : options.example_weights) {
      if (!(weight >= 0) || !std::isfinite(weight)) {
        return absl::InvalidArgumentError(
            absl::StrCat("example weights must be finite and >= 0; got ", weight));
      }
    }
  }
  if (options.strongly_augmented_from != 0) {
    if (options.strongly_augmented_from < 0 || options.strongly_augmented_from > data.size() ||
        options.dp || impl_->segmentation) {
      return absl::InvalidArgumentError(
          absl::StrCat("strong augmentation needs a first row in [0, ", data.size(), "] (got ",
                       options.strongly_augmented_from, "), a classification model and no DP-SGD"));
    }
    RETURN_IF_ERROR(CheckAugmentationFits(options.strong_augmentation, data));
  }
  if (options.dp) {
    const DpSgdOptions& dp = *options.dp;
    if (!(dp.clip_norm > 0) || !(dp.noise_multiplier >= 0) || !(dp.sample_rate > 0) ||
        dp.sample_rate > 1 || dp.steps < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DP-SGD needs clip_norm > 0, noise_multiplier >= 0, sample_rate in (0, 1] and steps "
          ">= 0; got ",
          dp.clip_norm, ", ", dp.noise_multiplier, ", ", dp.sample_rate, ", ", dp.steps));
    }
    return CatchTorch("training with DP-SGD",
                      [&] { return TrainWithDpSgd(impl_->module, impl_->device, data, options); });
  }
  return CatchTorch("training", [&] { return impl_->Train(data, options); });
}

absl::StatusOr<Predictions> LocalModel::Predict(const ImageSet& data, int batch_size) {
  RETURN_IF_ERROR(CheckImages(data, impl_->config));
  // Masks are optional here: without them there is no loss (new images).
  if (impl_->segmentation && data.has_masks()) RETURN_IF_ERROR(CheckMasks(data));
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size is ", batch_size));
  }
  return CatchTorch("predicting", [&] { return impl_->Predict(data, batch_size); });
}

absl::StatusOr<TrainSummary> LocalModel::Impl::Train(const ImageSet& data,
                                                     const TrainOptions& options) {
  module.train(true);
  std::vector<torch::Tensor> params;
  std::vector<std::string> param_names;
  std::vector<torch::Tensor> frozen;
  for (const auto& named : module.named_parameters(/*recurse=*/true)) {
    if (HasPrefix(WireName(named.name), options.frozen_prefixes)) {
      frozen.push_back(named.value);
    } else {
      params.push_back(named.value);
      param_names.push_back(WireName(named.name));
    }
  }
  if (params.empty()) return absl::InvalidArgumentError("every parameter is frozen");
  ASSIGN_OR_RETURN(const GradientCorrection correction,
                   GradientCorrection::Create(params, param_names, options.proximal_mu,
                                              options.gradient_offset, device));
  // Frozen for this call only: a later round may unfreeze them.
  struct Unfreeze {
    std::vector<torch::Tensor>& tensors;
    ~Unfreeze() {
      for (torch::Tensor& t : tensors) t.requires_grad_(true);
    }
  } unfreeze{frozen};
  for (torch::Tensor& t : frozen) t.requires_grad_(false);
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(params, options);
  // Shuffling and augmentation draw from a generator of their own. Dropout
  // inside the TorchScript graph can only use LibTorch's global generator,
  // so that is seeded too: two models training at once in one process
  // still work, but their dropout masks are then not reproducible.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  torch::manual_seed(options.seed);
  if (segmentation) {
    return TrainSegmentationEpochs(module, device, data, options, *optimizer, generator,
                                   correction);
  }

  const torch::Tensor pixels = PixelView(data);
  const torch::Tensor labels = LabelView(data);
  const int64_t n = data.size();
  c10::optional<torch::Tensor> class_weight;
  if (options.balance_classes) {
    class_weight = BalancedClassWeights(labels, config.num_classes).to(device);
  }
  torch::Tensor example_weight;
  if (!options.example_weights.empty()) {
    example_weight =
        torch::from_blob(const_cast<float*>(options.example_weights.data()), {n}, torch::kFloat32);
  }
  return RunShuffledEpochs(
      n, options, generator, static_cast<double>(n), [&](const torch::Tensor& index) {
        torch::Tensor x = ToModelInput(pixels.index_select(0, index));
        x = AugmentRows(x, index, options, generator);
        torch::Tensor y = labels.index_select(0, index);
        x = x.to(device);
        y = y.to(device);

        optimizer->zero_grad();
        torch::Tensor logits = module.forward({x}).toTensor();
        if (!example_weight.defined()) {
          torch::Tensor loss = torch::cross_entropy_loss(logits, y, class_weight);
          loss.backward();
          correction.Apply();
          optimizer->step();
          return BatchStep{loss.item<double>(), logits.argmax(1).eq(y).sum().item<int64_t>()};
        }
        const WeightedLoss weighted =
            WeightedCrossEntropy(logits, y, class_weight, example_weight.index_select(0, index));
        weighted.loss.backward();
        correction.Apply();
        optimizer->step();
        return ReportedStep(weighted, logits, y, index, options.reported_rows);
      });
}

absl::StatusOr<Predictions> LocalModel::Impl::Predict(const ImageSet& data, int batch_size) {
  module.eval();
  auto forward = [&](const torch::Tensor& x) { return module.forward({x}).toTensor(); };
  if (segmentation) return PredictSegmentation(data, device, batch_size, forward);
  return PredictInBatches(data, config.num_classes, device, batch_size, forward);
}

absl::Status LocalModel::SaveTorchScript(const std::string& path,
                                         const std::map<std::string, std::string>& metadata) const {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
    return absl::NotFoundError(absl::StrCat("cannot save model to ", path, ": directory ",
                                            parent.string(), " does not exist"));
  }
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  absl::Status status = CatchTorch("saving model to " + path, [&]() -> absl::Status {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot create ", temp));
    // Saved in eval mode and on the CPU, so torch.jit.load(path)(x) predicts
    // on any machine; the live model is restored afterwards. Saving to a
    // stream names the archive's root folder "archive", not after the temp.
    torch::jit::Module& module = impl_->module;
    torch::jit::ExtraFilesMap extra_files;
    for (const auto& [key, value] : metadata) {
      if (key == kModelCardMetadataKey) {
        extra_files[kModelCardFile] = value;
      } else {
        module.register_attribute("fedmi_" + key, c10::StringType::get(), value);
      }
    }
    DefineInferenceMethods(impl_->config, impl_->segmentation, &module);
    const bool was_training = module.is_training();
    module.eval();
    if (impl_->device.is_cuda()) module.to(torch::kCPU);
    std::exception_ptr failure;
    try {
      module.save(out, extra_files);
    } catch (...) {
      failure = std::current_exception();
    }
    if (impl_->device.is_cuda()) module.to(impl_->device);
    module.train(was_training);
    if (failure) std::rethrow_exception(failure);
    out.close();
    if (!out) return absl::DataLossError(absl::StrCat("writing ", temp, " failed"));
    std::filesystem::rename(temp, path);
    return absl::OkStatus();
  });
  if (!status.ok()) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
  }
  return status;
}

absl::Status LocalModel::SaveForMobile(const std::string& path,
                                       const std::map<std::string, std::string>& metadata,
                                       MobileQuantization quantization) const {
  // SaveModuleForMobile freezes a CPU copy; the live model is not changed.
  return SaveModuleForMobile(impl_->module, impl_->config, path, metadata, quantization);
}

absl::StatusOr<std::map<std::string, std::string>> LocalModel::Metadata() const {
  return CatchTorch(
      "reading model metadata", [&]() -> absl::StatusOr<std::map<std::string, std::string>> {
        constexpr absl::string_view kPrefix = "fedmi_";
        std::map<std::string, std::string> metadata;
        for (const auto& attribute : impl_->module.named_attributes(
                 /*recurse=*/false)) {
          if (!absl::StartsWith(attribute.name, kPrefix) || !attribute.value.isString()) {
            continue;
          }
          metadata[attribute.name.substr(kPrefix.size())] = attribute.value.toStringRef();
        }
        if (!impl_->model_card.empty()) metadata[kModelCardMetadataKey] = impl_->model_card;
        return metadata;
      });
}

}  // namespace fedmi::ml
