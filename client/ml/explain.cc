#include "client/ml/explain.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/ml/architectures.h"
#include "client/ml/torch_support.h"
#include "common/base/status.h"

namespace fedmi::ml {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Runs the model on a batch, giving (logits, the layer's output).
using FeatureForward = std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor&)>;

std::vector<std::string> Submodules(const torch::jit::Module& module) {
  std::vector<std::string> names;
  for (const auto& named : module.named_modules()) {
    if (!named.name.empty()) names.push_back(named.name);
  }
  return names;
}

std::string ListOrNone(const std::vector<std::string>& names) {
  return names.empty() ? "(none)" : absl::StrJoin(names, ", ");
}

std::string StringAttr(const torch::jit::Module& module, const char* name) {
  if (!module.hasattr(name)) return "";
  c10::IValue value = module.attr(name);
  return value.isString() ? value.toStringRef() : "";
}

// Whether `value` is self.path[0]. ... .path[depth - 1], reached from the
// graph's `self` input by GetAttr nodes alone.
bool IsSubmoduleValue(Value* value, Value* self, const std::vector<std::string>& path,
                      size_t depth) {
  for (size_t i = depth; i-- > 0;) {
    Node* node = value->node();
    if (node->kind() != c10::prim::GetAttr || node->s(c10::attr::name) != path[i]) return false;
    value = node->input(0);
  }
  return value == self;
}

// The method a prim::CallMethod node calls. Callers inline its graph(), not
// its optimized_graph(), which has every call inside already inlined and so
// would hide the submodule calls sought.
torch::jit::GraphFunction& Callee(Node* call) {
  auto type = call->input(0)->type()->expect<c10::ClassType>();
  return torch::jit::toGraphFunction(type->getMethod(call->s(c10::attr::name)));
}

// Inlines the calls in the top-level block of `graph` of any method of the
// object at `path[0..depth)` except `forward` at the next level, so that
// helpers like torchvision's `_forward_impl` do not hide the call sought.
void InlineHelperCalls(torch::jit::Graph& graph, const std::vector<std::string>& path,
                       size_t depth) {
  Value* self = graph.inputs()[0];
  for (bool inlined = true; inlined;) {
    inlined = false;
    for (Node* node : graph.block()->nodes()) {
      if (node->kind() == c10::prim::CallMethod &&
          IsSubmoduleValue(node->input(0), self, path, depth)) {
        torch::jit::inlineCallTo(node, &Callee(node), /*use_graph=*/false);
        inlined = true;
        break;
      }
    }
  }
}

// A copy of `forward`'s graph that also returns the output of the submodule
// at `layer` ("features.7"): the call of each path component's forward is
// inlined until the call of the last one is in the top-level graph, whose
// output becomes a second result. The module's own methods are untouched.
absl::StatusOr<std::shared_ptr<torch::jit::GraphFunction>> SubmoduleFeatureFunction(
    const torch::jit::Module& module, const std::string& layer) {
  const std::vector<std::string> path = absl::StrSplit(layer, '.');
  const std::vector<std::string> submodules = Submodules(module);
  if (std::find(submodules.begin(), submodules.end(), layer) == submodules.end()) {
    return absl::InvalidArgumentError(absl::StrCat("model has no submodule '", layer,
                                                   "'; its submodules: ", ListOrNone(submodules)));
  }
  std::shared_ptr<torch::jit::Graph> graph = module.get_method("forward").graph()->copy();
  Value* self = graph->inputs()[0];
  Value* feature = nullptr;
  for (size_t depth = 1; depth <= path.size(); ++depth) {
    InlineHelperCalls(*graph, path, depth - 1);
    Node* call = nullptr;
    for (Node* node : graph->block()->nodes()) {
      if (node->kind() == c10::prim::CallMethod && node->s(c10::attr::name) == "forward" &&
          IsSubmoduleValue(node->input(0), self, path, depth)) {
        call = node;  // the last call counts
      }
    }
    if (call == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "submodule '", absl::StrJoin(path.begin(), path.begin() + depth, "."),
          "' is not called in forward outside control flow, so its output cannot be explained; "
          "pick another of: ",
          ListOrNone(submodules)));
    }
    if (depth == path.size()) {
      feature = call->output();
    } else {
      torch::jit::inlineCallTo(call, &Callee(call), /*use_graph=*/false);
    }
  }
  Value* logits = graph->outputs()[0];
  Node* tuple = graph->createTuple({logits, feature});
  tuple->insertBefore(graph->return_node());
  graph->eraseOutput(0);
  graph->registerOutput(tuple->output());
  return std::make_shared<torch::jit::GraphFunction>(
      c10::QualifiedName("fedmi.explain.forward_with_submodule"), graph, nullptr);
}

// The default layer's map must be at least this many cells on each side.
constexpr int64_t kMinDefaultMapSide = 7;

// The layer a built-in model is explained at when none is given: the last
// named layer whose map is at least kMinDefaultMapSide x kMinDefaultMapSide
// for inputs like `x` (one image), or, when none is, the last of those with
// the largest map. The last layer is the most class-specific, but at small
// inputs too coarse to point with: at 28 x 28 the cnn's block3 is 3 x 3 and
// scored 0.26 in the pointing game where block2 (7 x 7) scored 0.95
// (docs/explain.md). At ImageNet sizes (224) the rule keeps the last layer,
// 7 x 7 in every built-in, as Grad-CAM is usually run.
std::string DefaultLayer(torch::jit::Method& method, const std::vector<std::string>& names,
                         const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::string fine_enough, largest;
  int64_t largest_side = -1;
  for (const std::string& name : names) {
    const torch::Tensor feature = method({x, name}).toTuple()->elements()[1].toTensor();
    if (feature.dim() != 4) continue;
    const int64_t side = std::min(feature.size(2), feature.size(3));
    if (side >= kMinDefaultMapSide) fine_enough = name;
    if (side >= largest_side) {
      largest = name;
      largest_side = side;
    }
  }
  return fine_enough.empty() ? largest : fine_enough;
}

std::vector<std::string> ExplainLayers(const torch::jit::Module& module) {
  return absl::StrSplit(StringAttr(module, kExplainLayersAttr), ',', absl::SkipEmpty());
}

// `sample`: one input image, for choosing the default layer.
absl::StatusOr<FeatureForward> MakeFeatureForward(torch::jit::Module& module,
                                                  const ExplainOptions& options,
                                                  const torch::Tensor& sample, std::string* layer) {
  if (module.find_method(kForwardWithFeatureMethod).has_value()) {
    const std::vector<std::string> names = ExplainLayers(module);
    torch::jit::Method method = module.get_method(kForwardWithFeatureMethod);
    *layer = options.layer.empty() ? DefaultLayer(method, names, sample) : options.layer;
    if (std::find(names.begin(), names.end(), *layer) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("model has no explainable layer '", *layer,
                                                     "'; its layers: ", ListOrNone(names)));
    }
    const std::string name = *layer;
    return FeatureForward([method, name](const torch::Tensor& x) mutable {
      auto outputs = method({x, name}).toTuple();
      return std::make_pair(outputs->elements()[0].toTensor(), outputs->elements()[1].toTensor());
    });
  }
  if (options.layer.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model names no explainable layers (it has no ", kForwardWithFeatureMethod,
                     "); give a layer, one of its submodules: ", ListOrNone(Submodules(module))));
  }
  *layer = options.layer;
  ASSIGN_OR_RETURN(std::shared_ptr<torch::jit::GraphFunction> function,
                   SubmoduleFeatureFunction(module, options.layer));
  c10::IValue self = module._ivalue();
  return FeatureForward([function, self](const torch::Tensor& x) {
    torch::jit::Stack stack{self, x};
    function->run(stack);
    auto outputs = stack.back().toTuple();
    return std::make_pair(outputs->elements()[0].toTensor(), outputs->elements()[1].toTensor());
  });
}

// Channel weights, N x C x 1 x 1, of the method.
torch::Tensor ChannelWeights(CamMethod method, const torch::Tensor& feature,
                             const torch::Tensor& grads) {
  if (method == CamMethod::kGradCam) return grads.mean({2, 3}, /*keepdim=*/true);
  // With S = exp(logit), every derivative of S is exp(logit) times the
  // power of the logit's gradient (the map is piecewise linear in A), so
  // exp(logit) cancels from alpha and only scales the weights, which the
  // normalisation removes; leaving it out avoids overflow.
  const torch::Tensor g2 = grads.pow(2);
  const torch::Tensor g3 = g2 * grads;
  const torch::Tensor sum_a = feature.sum({2, 3}, /*keepdim=*/true);
  const torch::Tensor denominator = 2 * g2 + sum_a * g3;
  const torch::Tensor alpha =
      torch::where(denominator != 0,
                   g2 / torch::where(denominator != 0, denominator, torch::ones_like(denominator)),
                   torch::zeros_like(g2));
  return (alpha * torch::relu(grads)).sum({2, 3}, /*keepdim=*/true);
}

absl::StatusOr<torch::jit::Module> LoadModule(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("no model file at ", path));
  }
  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a readable TorchScript archive: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<CamResult> Explain(torch::jit::Module& module, const ImageSet& data,
                                  const ExplainOptions& options) {
  if (data.size() == 0) return absl::InvalidArgumentError("no images to explain");
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", options.batch_size));
  }
  module.eval();
  // Unoptimised, each op records its own autograd node. The optimiser
  // would fuse the layer and what follows it into one differentiable
  // subgraph whose backward bypasses the layer's output tensor, so that
  // autograd::grad with respect to it fails ("appears to not have been
  // used in the graph"). Set before the first call, which the default
  // layer's choice makes.
  torch::jit::GraphOptimizerEnabledGuard no_fusion(false);
  CamResult result;
  const torch::Tensor pixels = PixelView(data);
  ASSIGN_OR_RETURN(
      FeatureForward forward,
      MakeFeatureForward(module, options, ToModelInput(pixels.slice(0, 0, 1)), &result.layer));
  torch::AutoGradMode grad_mode(true);
  const int64_t n = data.size();
  for (int64_t start = 0; start < n; start += options.batch_size) {
    const int64_t end = std::min(n, start + options.batch_size);
    // The input needs a gradient only so that a module whose parameters
    // are frozen still records the graph back to the layer.
    torch::Tensor x = ToModelInput(pixels.slice(0, start, end)).requires_grad_(true);
    auto [logits, feature] = forward(x);
    if (logits.dim() != 2 || logits.size(0) != end - start) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model output has shape ", c10::str(logits.sizes()), "; expected [batch, classes]"));
    }
    if (feature.dim() != 4 || feature.size(0) != end - start) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", result.layer, "' gives shape ", c10::str(feature.sizes()),
                       "; Grad-CAM needs [batch, channels, height, width]"));
    }
    const int64_t classes = logits.size(1);
    torch::Tensor target;
    if (options.target_class.has_value()) {
      if (*options.target_class < 0 || *options.target_class >= classes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "class ", *options.target_class, " is not one of the model's ", classes, " classes"));
      }
      target = torch::full({end - start}, *options.target_class, torch::kInt64);
    } else if (classes == 2) {
      target = torch::ones({end - start}, torch::kInt64);
    } else {
      target = logits.argmax(1);
    }
    const torch::Tensor score = logits.gather(1, target.unsqueeze(1)).sum();
    const torch::Tensor grads = torch::autograd::grad({score}, {feature})[0];
    torch::NoGradGuard no_grad;
    const torch::Tensor weights = ChannelWeights(options.method, feature, grads);
    torch::Tensor cam = torch::relu((weights * feature).sum(1, /*keepdim=*/true));
    cam = torch::upsample_bilinear2d(cam, {data.height, data.width}, /*align_corners=*/false)
              .squeeze(1)
              .flatten(1);
    // A non-finite map is drawn as an empty one and flagged; left as it is,
    // its NaNs would make every comparison below false.
    const torch::Tensor finite = torch::isfinite(cam).all(1, /*keepdim=*/true);
    cam = torch::where(finite, cam, torch::zeros_like(cam));
    const torch::Tensor low = std::get<0>(cam.min(1, true));
    const torch::Tensor range = std::get<0>(cam.max(1, true)) - low;
    const torch::Tensor has_peak = range > 0;
    cam =
        torch::where(has_peak, (cam - low) / torch::where(has_peak, range, torch::ones_like(range)),
                     torch::zeros_like(cam))
            .contiguous();
    const torch::Tensor probs = torch::softmax(logits.detach(), 1).gather(1, target.unsqueeze(1));
    result.feature_height = feature.size(2);
    result.feature_width = feature.size(3);
    for (int64_t i = 0; i < end - start; ++i) {
      ImageCam image;
      image.target_class = target[i].item<int64_t>();
      image.probability = probs[i][0].item<float>();
      image.finite = finite[i][0].item<bool>();
      const float* map = cam[i].data_ptr<float>();
      image.heatmap.assign(map, map + cam.size(1));
      if (has_peak[i][0].item<bool>()) {
        const int64_t peak =
            std::max_element(image.heatmap.begin(), image.heatmap.end()) - image.heatmap.begin();
        image.peak = CamPeak{peak / data.width, peak % data.width, image.heatmap[peak]};
      }
      result.images.push_back(std::move(image));
    }
    if (options.progress) options.progress(end, n);
  }
  return result;
}

}  // namespace

const char* CamMethodName(CamMethod method) {
  return method == CamMethod::kGradCam ? "gradcam" : "gradcam++";
}

absl::StatusOr<CamMethod> ParseCamMethod(const std::string& name) {
  if (name == "gradcam") return CamMethod::kGradCam;
  if (name == "gradcam++") return CamMethod::kGradCamPlusPlus;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown explanation method '", name, "'; known: gradcam, gradcam++"));
}

absl::StatusOr<ExplainableModelInfo> DescribeExplainableModel(const std::string& model_path) {
  return CatchTorch("reading " + model_path, [&]() -> absl::StatusOr<ExplainableModelInfo> {
    ASSIGN_OR_RETURN(torch::jit::Module module, LoadModule(model_path));
    ExplainableModelInfo info;
    const bool named = module.find_method(kForwardWithFeatureMethod).has_value();
    if (named) info.layers = ExplainLayers(module);
    if (ModelConfig config; ReadConfigAttributes(module, &config).ok()) {
      info.height = config.height;
      info.width = config.width;
      info.channels = config.channels;
      if (named) {
        module.eval();
        torch::jit::Method method = module.get_method(kForwardWithFeatureMethod);
        info.default_layer = DefaultLayer(
            method, info.layers, torch::zeros({1, config.channels, config.height, config.width}));
      }
    }
    info.submodules = Submodules(module);
    return info;
  });
}

absl::StatusOr<CamResult> ExplainModelFile(const std::string& model_path, const ImageSet& data,
                                           const ExplainOptions& options) {
  return CatchTorch("explaining " + model_path, [&]() -> absl::StatusOr<CamResult> {
    ASSIGN_OR_RETURN(torch::jit::Module module, LoadModule(model_path));
    return Explain(module, data, options);
  });
}

}  // namespace fedmi::ml
