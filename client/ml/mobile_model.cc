#include "client/ml/mobile_model.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/mobile/import.h>
#include <torch/csrc/jit/mobile/module.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/script.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/ml/architectures.h"
#include "client/ml/segmentation.h"
#include "client/ml/torch_support.h"
#include "common/base/status.h"

namespace fedmi::ml {
namespace {

constexpr absl::string_view kAttributePrefix = "fedmi_";

// The module's attributes fedmi wrote (config and metadata), which freezing
// must keep and the metadata file repeats.
std::vector<std::string> FedmiAttributeNames(const torch::jit::Module& module) {
  std::vector<std::string> names;
  for (const auto& attribute : module.named_attributes(/*recurse=*/false)) {
    if (absl::StartsWith(attribute.name, kAttributePrefix)) names.push_back(attribute.name);
  }
  return names;
}

// A linear layer's weight [out, in] quantized to int8 with one symmetric
// scale per output channel (row): the row's max |w| maps to 127.
torch::Tensor QuantizeWeightPerChannel(const torch::Tensor& weight) {
  const torch::Tensor w = weight.to(torch::kFloat32).contiguous();
  const torch::Tensor scales = (w.abs().amax(1) / 127.0).clamp_min(1e-12).to(torch::kFloat64);
  const torch::Tensor zero_points = torch::zeros({w.size(0)}, torch::kInt64);
  return at::quantize_per_channel(w, scales, zero_points, /*axis=*/0, torch::kQInt8);
}

// quantized::linear_prepack(int8 weight, bias): the engine's packed weight
// (a LinearPackedParamsBase object). It pickles as the unpacked int8 weight
// and bias, so a file written with fbgemm repacks for qnnpack on a phone.
c10::IValue PrepackLinear(const torch::Tensor& quantized_weight, const c10::IValue& bias) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  torch::jit::Stack stack{quantized_weight, bias};
  op.callBoxed(&stack);
  return stack.at(0);
}

// Rewrites every linear layer of the frozen forward whose weight is a
// constant into quantized::linear_dynamic with a packed int8 weight held as
// a module attribute. Returns how many layers it rewrote.
int QuantizeLinearLayers(torch::jit::Module& frozen) {
  const std::shared_ptr<torch::jit::Graph> graph = frozen.get_method("forward").graph();
  std::vector<torch::jit::Node*> linears;
  for (torch::jit::Node* node : graph->nodes()) {
    if (node->kind() == c10::Symbol::aten("linear")) linears.push_back(node);
  }
  const c10::Symbol linear_dynamic = c10::Symbol::fromQualString("quantized::linear_dynamic");
  int rewritten = 0;
  for (torch::jit::Node* node : linears) {
    const c10::optional<c10::IValue> weight = torch::jit::toIValue(node->input(1));
    const c10::optional<c10::IValue> bias = torch::jit::toIValue(node->input(2));
    if (!weight.has_value() || !weight->isTensor() || weight->toTensor().dim() != 2 ||
        !bias.has_value()) {
      continue;  // not a constant layer: it stays float
    }
    const c10::IValue packed = PrepackLinear(QuantizeWeightPerChannel(weight->toTensor()), *bias);
    const std::string name = absl::StrCat("fedmi_int8_linear_", rewritten++);
    frozen.register_attribute(name, packed.type(), packed);
    torch::jit::WithInsertPoint insert_before(node);
    torch::jit::Value* packed_value = graph->insertGetAttr(graph->inputs()[0], name);
    // reduce_range: activations use 7 bits, which fbgemm's int8 kernels need
    // to avoid overflow; torch.ao.nn.quantized.dynamic.Linear does the same.
    torch::jit::Value* output =
        graph->insert(linear_dynamic, {node->input(0), packed_value, torch::jit::IValue(true)});
    node->output()->replaceAllUsesWith(output);
    node->destroy();
  }
  torch::jit::EliminateDeadCode(graph);
  return rewritten;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::string& path,
                                                                 const std::string& text) {
  std::map<std::string, std::string> metadata;
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": extra file ", kMobileMetadataFile, " is not a JSON object"));
  }
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": metadata '", key, "' is not a string"));
    }
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

absl::Status ConfigFromMetadata(const std::string& path,
                                const std::map<std::string, std::string>& metadata,
                                ModelConfig* config) {
  auto arch = metadata.find("arch");
  if (arch == metadata.end()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": metadata has no 'arch'"));
  }
  config->arch = arch->second;
  config->seed = 0;
  for (auto [key, field] : {std::pair{"num_classes", &config->num_classes},
                            {"channels", &config->channels},
                            {"height", &config->height},
                            {"width", &config->width}}) {
    auto it = metadata.find(key);
    if (it == metadata.end() || !absl::SimpleAtoi(it->second, field) || *field < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": metadata '", key, "' is missing or not a positive integer"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string MobileQuantizationName(MobileQuantization quantization) {
  return quantization == MobileQuantization::kDynamicInt8 ? "dynamic_int8" : "none";
}

std::vector<std::string> SupportedQuantizedEngines() {
  std::vector<std::string> engines;
  for (at::QEngine engine : at::globalContext().supportedQEngines()) {
    if (engine != at::QEngine::NoQEngine) engines.push_back(c10::toString(engine));
  }
  return engines;
}

absl::Status SaveModuleForMobile(const torch::jit::Module& module, const ModelConfig& config,
                                 const std::string& path,
                                 const std::map<std::string, std::string>& metadata,
                                 MobileQuantization quantization) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
    return absl::NotFoundError(absl::StrCat("cannot save model to ", path, ": directory ",
                                            parent.string(), " does not exist"));
  }
  if (quantization == MobileQuantization::kDynamicInt8 && SupportedQuantizedEngines().empty()) {
    return absl::FailedPreconditionError(
        "this LibTorch has no quantized engine (fbgemm or qnnpack), so it cannot write int8 "
        "layers; export without --quantize");
  }
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  absl::Status status = CatchTorch("saving mobile model to " + path, [&]() -> absl::Status {
    // A copy with its own class type, so that freezing and rewriting leave
    // the caller's module (possibly mid-training, possibly on a GPU) alone.
    torch::jit::Module copy = module.clone();
    copy.to(torch::kCPU);
    copy.eval();
    torch::NoGradGuard no_grad;
    // Freezing turns weights into constants of forward and drops the other
    // methods; fedmi's attributes are kept so that torch.jit.load of the
    // archive still shows them. optimize_numerics = false: no conv/BatchNorm
    // folding, so the float file predicts as the .pt does (to 1e-6).
    torch::jit::Module frozen =
        torch::jit::freeze(copy, FedmiAttributeNames(copy), /*optimize_numerics=*/false);
    std::map<std::string, std::string> all = metadata;
    for (const auto& attribute : frozen.named_attributes(/*recurse=*/false)) {
      // The file has no forward_with_feature, so no layers to explain.
      if (!absl::StartsWith(attribute.name, kAttributePrefix) ||
          attribute.name == kExplainLayersAttr || attribute.name == kExplainLayerAttr) {
        continue;
      }
      const std::string key = attribute.name.substr(kAttributePrefix.size());
      if (attribute.value.isString()) all.emplace(key, attribute.value.toStringRef());
    }
    all["arch"] = config.arch;
    all["num_classes"] = absl::StrCat(config.num_classes);
    all["channels"] = absl::StrCat(config.channels);
    all["height"] = absl::StrCat(config.height);
    all["width"] = absl::StrCat(config.width);
    all["quantization"] = MobileQuantizationName(quantization);
    if (quantization == MobileQuantization::kDynamicInt8) {
      all["quantized_linear_layers"] = absl::StrCat(QuantizeLinearLayers(frozen));
    }
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [key, value] : all) json[key] = value;
    torch::jit::ExtraFilesMap extra_files = {{kMobileMetadataFile, json.dump()}};
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot create ", temp));
    frozen._save_for_mobile(out, extra_files);
    out.close();
    if (!out) return absl::DataLossError(absl::StrCat("writing ", temp, " failed"));
    std::filesystem::rename(temp, path);
    return absl::OkStatus();
  });
  if (!status.ok()) {
    std::filesystem::remove(temp, error);
  }
  return status;
}

struct MobileModel::Impl {
  ModelConfig config;
  std::map<std::string, std::string> metadata;
  bool segmentation = false;
  std::optional<torch::jit::mobile::Module> module;  // no default constructor
};

MobileModel::MobileModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MobileModel::~MobileModel() = default;

const ModelConfig& MobileModel::config() const { return impl_->config; }
const std::map<std::string, std::string>& MobileModel::metadata() const { return impl_->metadata; }
bool MobileModel::is_segmentation() const { return impl_->segmentation; }

absl::StatusOr<std::unique_ptr<MobileModel>> MobileModel::Load(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("model file ", path, " does not exist"));
  }
  return CatchTorch("loading " + path, [&]() -> absl::StatusOr<std::unique_ptr<MobileModel>> {
    torch::jit::ExtraFilesMap extra_files = {{kMobileMetadataFile, ""}};
    std::optional<torch::jit::mobile::Module> module;
    try {
      module = torch::jit::_load_for_mobile(path, torch::Device(torch::kCPU), extra_files);
    } catch (const c10::Error& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          path,
          " is not a readable mobile (lite interpreter) model: ", e.what_without_backtrace()));
    }
    const std::string& text = extra_files[kMobileMetadataFile];
    if (text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " has no ", kMobileMetadataFile,
          "; mobile models need fedmi's metadata (write them with `fedmi model export`)"));
    }
    auto impl = std::make_unique<Impl>();
    ASSIGN_OR_RETURN(impl->metadata, ParseMetadata(path, text));
    RETURN_IF_ERROR(ConfigFromMetadata(path, impl->metadata, &impl->config));
    const auto task = impl->metadata.find("task");
    impl->segmentation =
        IsSegmentationModel(impl->config.arch, task == impl->metadata.end() ? "" : task->second);
    impl->module = std::move(module);
    return std::unique_ptr<MobileModel>(new MobileModel(std::move(impl)));
  });
}

absl::StatusOr<Predictions> MobileModel::Predict(const ImageSet& data, int batch_size) {
  RETURN_IF_ERROR(CheckImages(data, impl_->config));
  if (impl_->segmentation && data.has_masks()) RETURN_IF_ERROR(CheckMasks(data));
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size is ", batch_size));
  }
  return CatchTorch("predicting", [&]() -> absl::StatusOr<Predictions> {
    const torch::Device cpu(torch::kCPU);
    auto forward = [&](const torch::Tensor& x) { return impl_->module->forward({x}).toTensor(); };
    if (impl_->segmentation) return PredictSegmentation(data, cpu, batch_size, forward);
    return PredictInBatches(data, impl_->config.num_classes, cpu, batch_size, forward);
  });
}

}  // namespace fedmi::ml
