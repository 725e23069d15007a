// LocalModel::Score: probabilities, Monte-Carlo dropout samples and
// embeddings of images, for active learning, label audits and pseudo-labels.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/ml/local_model.h"
#include "client/ml/local_model_impl.h"
#include "client/ml/torch_support.h"
#include "common/base/status.h"

namespace fedmi::ml {
namespace {

using torch::jit::Node;

// A copy of `module`'s forward that returns (logits, input of the last
// top-level linear layer, its weight, its bias), every method call inlined.
absl::StatusOr<std::shared_ptr<torch::jit::GraphFunction>> LastLinearFunction(
    const torch::jit::Module& module) {
  std::shared_ptr<torch::jit::Graph> graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  Node* last_linear = nullptr;
  for (Node* node : graph->block()->nodes()) {
    if (node->kind() == c10::aten::linear) last_linear = node;
  }
  if (last_linear != nullptr && last_linear->output() != graph->outputs()[0]) {
    return absl::InvalidArgumentError(
        "the model's last linear layer does not give its output (the logits are changed after "
        "it), so its input is not the embedding the logits come from");
  }
  if (last_linear == nullptr) {
    return absl::InvalidArgumentError(
        "the model's forward has no linear layer outside control flow, so it has no embedding "
        "to compare images by (coreset, out-of-distribution) and no layer to apply "
        "Monte-Carlo dropout before (bald)");
  }
  Node* tuple = graph->createTuple(
      {graph->outputs()[0], last_linear->input(0), last_linear->input(1), last_linear->input(2)});
  tuple->insertBefore(graph->return_node());
  graph->eraseOutput(0);
  graph->registerOutput(tuple->output());
  return std::make_shared<torch::jit::GraphFunction>(
      c10::QualifiedName("fedmi.scores.forward_with_embedding"), graph, nullptr);
}

void Append(const torch::Tensor& tensor, std::vector<float>& out) {
  const torch::Tensor flat = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
  out.insert(out.end(), flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

}  // namespace

absl::StatusOr<ImageScores> LocalModel::Score(const ImageSet& data, const ScoreOptions& options) {
  RETURN_IF_ERROR(CheckImages(data, impl_->config, /*labels_read=*/false));
  if (impl_->segmentation) {
    return absl::InvalidArgumentError("scoring images needs a classification model");
  }
  if (options.mc_passes < 0 || !(options.mc_dropout >= 0 && options.mc_dropout < 1) ||
      options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("scoring needs mc_passes >= 0, mc_dropout in [0, 1) and batch_size >= 1; got ",
                     options.mc_passes, ", ", options.mc_dropout, ", ", options.batch_size));
  }
  return CatchTorch("scoring images", [&]() -> absl::StatusOr<ImageScores> {
    torch::jit::Module& module = impl_->module;
    module.eval();
    torch::NoGradGuard no_grad;
    const bool needs_embedding = options.embeddings || options.mc_passes > 0;
    std::shared_ptr<torch::jit::GraphFunction> function;
    if (needs_embedding) {
      ASSIGN_OR_RETURN(function, LastLinearFunction(module));
    }
    ImageScores scores;
    scores.rows = data.size();
    scores.num_classes = impl_->config.num_classes;
    scores.mc_passes = options.mc_passes;
    scores.mc_probabilities.resize(
        static_cast<size_t>(options.mc_passes * scores.rows * scores.num_classes));
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    const torch::Tensor pixels = PixelView(data);
    for (int64_t start = 0; start < scores.rows; start += options.batch_size) {
      const int64_t end = std::min(scores.rows, start + options.batch_size);
      const torch::Tensor x = ToModelInput(pixels.slice(0, start, end)).to(impl_->device);
      if (!needs_embedding) {
        Append(torch::softmax(module.forward({x}).toTensor(), 1), scores.probabilities);
        continue;
      }
      torch::jit::Stack stack{module._ivalue(), x};
      function->run(stack);
      const auto outputs = stack.back().toTuple()->elements();
      const torch::Tensor logits = outputs[0].toTensor();
      if (logits.dim() != 2 || logits.size(1) != scores.num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("the model gives logits of shape ",
                                                       c10::str(logits.sizes()), ", not [N, ",
                                                       scores.num_classes, "]"));
      }
      Append(torch::softmax(logits, 1), scores.probabilities);
      const torch::Tensor embedding = outputs[1].toTensor().flatten(1).to(torch::kCPU);
      scores.embedding_dim = embedding.size(1);
      if (options.embeddings) Append(embedding, scores.embeddings);
      const torch::Tensor weight = outputs[2].toTensor().to(torch::kCPU);
      const torch::Tensor bias = outputs[3].isNone() ? torch::zeros({weight.size(0)})
                                                     : outputs[3].toTensor().to(torch::kCPU);
      const double keep = 1 - options.mc_dropout;
      for (int pass = 0; pass < options.mc_passes; ++pass) {
        const torch::Tensor mask =
            torch::bernoulli(torch::full_like(embedding, keep), generator) / keep;
        const torch::Tensor probs =
            torch::softmax(torch::linear(embedding * mask, weight, bias), 1).contiguous();
        std::copy(
            probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel(),
            scores.mc_probabilities.begin() + (pass * scores.rows + start) * scores.num_classes);
      }
    }
    return scores;
  });
}

}  // namespace fedmi::ml
