// Internal to fedmi_ml's architecture files: ScriptBuilder writes a
// TorchScript module one layer at a time, with functional ops, so that a
// saved model runs in C++ and Python without fedmi code. Includes LibTorch:
// only client/ml/architectures*.cc include it.
#ifndef FEDMI_CLIENT_ML_SCRIPT_BUILDER_H_
#define FEDMI_CLIENT_ML_SCRIPT_BUILDER_H_

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/ml/architectures.h"

namespace fedmi::ml {

// The same layer written three times: for forward(x), which every model
// has; for per_example_forward(x, p), which takes a copy of every parameter
// per example (p[i] has a leading batch dimension), so that one backward pass
// leaves each example's own gradient in p[i].grad; and for
// forward_with_activations(x), which also lists each layer's input and
// output, so that per-example gradients, their norms and weighted sums
// follow from one batched backward pass to those outputs (Opacus-style, see
// architectures.h). Both give DP-SGD without a loop over examples.
struct Expr {
  std::string batched;
  std::string per_example;
  std::string tapped;
};
inline Expr operator+(const std::string& text, const Expr& expr) {
  return {text + expr.batched, text + expr.per_example, text + expr.tapped};
}
inline Expr operator+(const Expr& expr, const std::string& text) {
  return {expr.batched + text, expr.per_example + text, expr.tapped + text};
}

// TorchScript helpers of per_example_forward. A convolution with a weight
// per example is one grouped convolution: the batch folds into the channels
// and each example is its own group. (An im2col and batched matrix product
// measured slower on this CPU; both are slower than microbatching and far
// slower than the layerwise methods below, see docs/privacy.md.)
inline constexpr char kPerExampleHelpers[] = R"(
def _per_example_conv(self, x, w, stride: int, padding: int):
    n = x.size(0)
    y = torch.conv2d(x.reshape([1, -1, x.size(2), x.size(3)]),
                     w.reshape([-1, w.size(2), w.size(3), w.size(4)]), None,
                     [stride, stride], [padding, padding], [1, 1], n)
    return y.reshape([n, -1, y.size(2), y.size(3)])

def _per_example_affine(self, x, w, b):
    return x * w.unsqueeze(2).unsqueeze(3) + b.unsqueeze(2).unsqueeze(3)
)";

// TorchScript helpers of forward_with_activations and the methods that take
// its lists. Each _tapped_ layer appends what its parameters' gradients need
// to `a` (its input; for GroupNorm the normalised input its affine map
// scales) and its output to `z`. An example's weight gradient is then its
// output gradient times its own input: an outer product for a linear layer,
// and for a convolution the product of the output gradient with the
// unfolded (im2col) input, one batched matrix product for the whole batch.
// Norms and weighted sums avoid forming the largest of these: a linear
// layer's outer product has norm |g| |a| (Goodfellow 2015, "ghost norm"),
// and a convolution's weighted sum is the ordinary weight gradient of its
// reweighted output gradient. (Fresh memory costs more than arithmetic on
// the CPUs measured, through page faults; adding a convolution's norm up
// one kernel offset at a time, which copies less, measured no faster.)
inline constexpr char kTappedHelpers[] = R"(
def _tapped_conv(self, a: List[Tensor], z: List[Tensor], x, w, b: Optional[Tensor],
                 stride: int, padding: int):
    a.append(x)
    y = torch.conv2d(x, w, b, [stride, stride], [padding, padding])
    z.append(y)
    return y

def _tapped_group_norm(self, a: List[Tensor], z: List[Tensor], x, groups: int, w, b):
    x = torch.group_norm(x, groups, None, None, 1e-5)
    a.append(x)
    y = x * w.unsqueeze(1).unsqueeze(2) + b.unsqueeze(1).unsqueeze(2)
    z.append(y)
    return y

def _tapped_linear(self, a: List[Tensor], z: List[Tensor], x, w, b):
    a.append(x)
    y = torch.linear(x, w, b)
    z.append(y)
    return y

def _conv_weight_gradients(self, x, g, kernel: int, stride: int, padding: int):
    n = x.size(0)
    columns = torch.im2col(x, [kernel, kernel], [1, 1], [padding, padding], [stride, stride])
    w = torch.bmm(g.reshape([n, g.size(1), -1]), columns.transpose(1, 2))
    return w.reshape([n, g.size(1), x.size(1), kernel, kernel])

def _conv_weighted_gradient(self, x, g, weights, w, stride: int, padding: int):
    g = g * weights.reshape([-1, 1, 1, 1])
    return torch.convolution_backward(g, x, w, None, [stride, stride], [padding, padding], [1, 1],
                                      False, [0, 0], 1, [False, True, False])[1]

def _squared_norms(self, t):
    # A norm reduction allocates no squared copy of t.
    return torch.linalg_vector_norm(t.reshape([t.size(0), -1]), 2.0, [1]).pow(2)
)";

// Registers tensors on a module and writes the TorchScript source of its
// forward() (and the per-example methods, see Expr) one statement at a time.
// Each layer method registers its weights (drawn from the builder's own
// generator, in call order, which is also the wire order), adds the lines
// of the layerwise methods that compute their gradients (in the same order)
// and returns the expression that applies the layer. BatchNorm mixes the
// examples of a batch, so a model that uses it gets no per-example methods.
class ScriptBuilder {
 public:
  ScriptBuilder(torch::jit::Module* module, uint64_t seed)
      : module_(module), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  // `groups` > 1 (depthwise convolutions) has no per-example methods: the
  // helpers below assume one group, so a model using it is not
  // DP-compatible. `fan_out` picks torchvision's ResNet and MobileNet init
  // (Kaiming normal over output fan) over the fan-in one.
  Expr Conv(const std::string& name, const std::string& input, int64_t in, int64_t out,
            int64_t kernel, int64_t stride, int64_t padding, bool bias, int64_t groups = 1,
            bool fan_out = false) {
    if (groups != 1) per_example_possible_ = false;
    // Kaiming normal, ReLU gain (He et al. 2015); fans as PyTorch computes
    // them from the weight's shape.
    const int64_t fan = (fan_out ? out : in / groups) * kernel * kernel;
    const double std = std::sqrt(2.0 / static_cast<double>(fan));
    const Expr weight =
        Parameter(name + ".weight",
                  torch::empty({out, in / groups, kernel, kernel}).normal_(0, std, generator_));
    const Expr bias_expr =
        bias ? Parameter(name + ".bias", torch::zeros({out})) : Expr{"None", "None", "None"};
    Expr applied;
    applied.batched = absl::StrCat("torch.conv2d(", input, ", ", weight.batched, ", ",
                                   bias_expr.batched, ", [", stride, ", ", stride, "], [", padding,
                                   ", ", padding, "], [1, 1], ", groups, ")");
    applied.per_example = absl::StrCat("self._per_example_conv(", input, ", ", weight.per_example,
                                       ", ", stride, ", ", padding, ")");
    if (bias) {
      applied.per_example = absl::StrCat("(", applied.per_example, " + ", bias_expr.per_example,
                                         ".unsqueeze(2).unsqueeze(3))");
    }
    const int tap = NextTap();
    applied.tapped = absl::StrCat("self._tapped_conv(a, z, ", input, ", ", weight.tapped, ", ",
                                  bias_expr.tapped, ", ", stride, ", ", padding, ")");
    const std::string a = absl::StrCat("a[", tap, "]"), g = absl::StrCat("g[", tap, "]");
    Gradient(absl::StrCat("self._conv_weight_gradients(", a, ", ", g, ", ", kernel, ", ", stride,
                          ", ", padding, ")"),
             "",
             absl::StrCat("self._conv_weighted_gradient(", a, ", ", g, ", weights, ", weight.tapped,
                          ", ", stride, ", ", padding, ")"));
    if (bias) Gradient(g + ".sum([2, 3])");
    return applied;
  }

  // A transposed convolution of stride `kernel` (U-Net's up-sampling), with
  // a bias and PyTorch's default init, U(-1/sqrt(fan), 1/sqrt(fan)) with
  // fan = out * kernel^2. No per-example methods.
  std::string ConvTranspose(const std::string& name, const std::string& input, int64_t in,
                            int64_t out, int64_t kernel) {
    per_example_possible_ = false;
    const double bound = 1.0 / std::sqrt(static_cast<double>(out * kernel * kernel));
    const Expr weight =
        Parameter(name + ".weight",
                  torch::empty({in, out, kernel, kernel}).uniform_(-bound, bound, generator_));
    const Expr bias =
        Parameter(name + ".bias", torch::empty({out}).uniform_(-bound, bound, generator_));
    return absl::StrCat("torch.conv_transpose2d(", input, ", ", weight.batched, ", ", bias.batched,
                        ", [", kernel, ", ", kernel, "])");
  }

  Expr BatchNorm(const std::string& name, const std::string& input, int64_t channels) {
    per_example_possible_ = false;
    const Expr weight = Parameter(name + ".weight", torch::ones({channels}));
    const Expr bias = Parameter(name + ".bias", torch::zeros({channels}));
    const std::string mean = Buffer(name + ".running_mean", torch::zeros({channels}));
    const std::string var = Buffer(name + ".running_var", torch::ones({channels}));
    const std::string applied =
        absl::StrCat("torch.batch_norm(", input, ", ", weight.batched, ", ", bias.batched, ", ",
                     mean, ", ", var, ", self.training, 0.1, 1e-5, False)");
    return {applied, applied, applied};
  }

  // Normalises each example over groups of channels: no statistic crosses
  // examples, and training and evaluation compute the same thing.
  Expr GroupNorm(const std::string& name, const std::string& input, int64_t groups,
                 int64_t channels) {
    const Expr weight = Parameter(name + ".weight", torch::ones({channels}));
    const Expr bias = Parameter(name + ".bias", torch::zeros({channels}));
    const int tap = NextTap();
    Gradient(absl::StrCat("(a[", tap, "] * g[", tap, "]).sum([2, 3])"));
    Gradient(absl::StrCat("g[", tap, "].sum([2, 3])"));
    return {absl::StrCat("torch.group_norm(", input, ", ", groups, ", ", weight.batched, ", ",
                         bias.batched, ", 1e-5)"),
            absl::StrCat("self._per_example_affine(torch.group_norm(", input, ", ", groups,
                         ", None, None, 1e-5), ", weight.per_example, ", ", bias.per_example, ")"),
            absl::StrCat("self._tapped_group_norm(a, z, ", input, ", ", groups, ", ", weight.tapped,
                         ", ", bias.tapped, ")")};
  }

  // `relu_follows` picks Kaiming normal init for hidden layers; an output
  // layer gets PyTorch's default U(-1/sqrt(in), 1/sqrt(in)) so initial
  // logits stay small.
  Expr Linear(const std::string& name, const std::string& input, int64_t in, int64_t out,
              bool relu_follows) {
    torch::Tensor w = torch::empty({out, in});
    if (relu_follows) {
      w.normal_(0, std::sqrt(2.0 / static_cast<double>(in)), generator_);
    } else {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      w.uniform_(-bound, bound, generator_);
    }
    const Expr weight = Parameter(name + ".weight", w);
    const Expr bias = Parameter(name + ".bias", torch::zeros({out}));
    const int tap = NextTap();
    const std::string a = absl::StrCat("a[", tap, "]"), g = absl::StrCat("g[", tap, "]");
    Gradient(absl::StrCat("torch.bmm(", g, ".unsqueeze(2), ", a, ".unsqueeze(1))"),
             absl::StrCat("self._squared_norms(", g, ") * self._squared_norms(", a, ")"),
             absl::StrCat("torch.mm((", g, " * weights.unsqueeze(1)).t(), ", a, ")"));
    Gradient(g);
    return {absl::StrCat("torch.linear(", input, ", ", weight.batched, ", ", bias.batched, ")"),
            absl::StrCat("torch.baddbmm(", bias.per_example, ".unsqueeze(1), ", input,
                         ".unsqueeze(1), ", weight.per_example, ".transpose(1, 2)).squeeze(1)"),
            absl::StrCat("self._tapped_linear(a, z, ", input, ", ", weight.tapped, ", ",
                         bias.tapped, ")")};
  }

  void Statement(const std::string& statement) { Statement(Expr{statement, statement, statement}); }
  void Statement(const Expr& statement) {
    body_ += absl::StrCat("    ", statement.batched, "\n");
    explained_body_ += absl::StrCat("    ", statement.batched, "\n");
    per_example_body_ += absl::StrCat("    ", statement.per_example, "\n");
    tapped_body_ += absl::StrCat("    ", statement.tapped, "\n");
  }

  // Names the activation in `variable` after the statements so far as a
  // layer that explanations (Grad-CAM) may look at, by a name that follows
  // torchvision's module names ("layer4", "features.denseblock4"). The
  // last layer named is the default one (kExplainLayerAttr).
  void Feature(const std::string& name, const std::string& variable = "x") {
    explained_body_ +=
        absl::StrCat("    if layer == \"", name, "\":\n        feature = ", variable, "\n");
    feature_names_.push_back(name);
  }

  // Every method returns x: each architecture's last statement assigns its
  // logits to it.
  void DefineForward() {
    const std::string output = "x";
    module_->define(absl::StrCat("def forward(self, x):\n", body_, "    return ", output, "\n"));
    if (!feature_names_.empty()) {
      module_->define(absl::StrCat("def ", kForwardWithFeatureMethod,
                                   "(self, x, layer: str) -> Tuple[Tensor, Tensor]:\n"
                                   "    feature = torch.empty([0])\n",
                                   explained_body_, "    return ", output, ", feature\n"));
      module_->register_attribute(kExplainLayersAttr, c10::StringType::get(),
                                  absl::StrJoin(feature_names_, ","));
      module_->register_attribute(kExplainLayerAttr, c10::StringType::get(), feature_names_.back());
    }
    if (per_example_possible_) {
      module_->define(kPerExampleHelpers);
      module_->define(absl::StrCat("def ", kPerExampleForwardMethod,
                                   "(self, x, p: List[Tensor]):\n", per_example_body_,
                                   "    return ", output, "\n"));
      module_->define(kTappedHelpers);
      module_->define(absl::StrCat("def ", kForwardWithActivationsMethod,
                                   "(self, x) -> Tuple[Tensor, List[Tensor], List[Tensor]]:\n"
                                   "    a: List[Tensor] = []\n    z: List[Tensor] = []\n",
                                   tapped_body_, "    return ", output, ", a, z\n"));
      const std::string lists = "(self, a: List[Tensor], g: List[Tensor]";
      module_->define(absl::StrCat("def ", kPerExampleGradientsMethod, lists,
                                   ") -> List[Tensor]:\n    r: List[Tensor] = []\n",
                                   gradients_body_, "    return r\n"));
      module_->define(absl::StrCat("def ", kPerExampleSquaredNormsMethod, lists,
                                   ") -> Tensor:\n    r: List[Tensor] = []\n", squared_norms_body_,
                                   "    return torch.stack(r).sum(0)\n"));
      module_->define(absl::StrCat("def ", kWeightedGradientsMethod, lists,
                                   ", weights) -> List[Tensor]:\n    r: List[Tensor] = []\n",
                                   weighted_body_, "    return r\n"));
    }
  }

 private:
  static std::string AttributeName(const std::string& dotted) {
    return absl::StrReplaceAll(dotted, {{".", "__"}});
  }

  Expr Parameter(const std::string& dotted, torch::Tensor value) {
    const std::string name = AttributeName(dotted);
    module_->register_parameter(name, value.requires_grad_(), /*is_buffer=*/false);
    return {"self." + name, absl::StrCat("p[", parameter_count_++, "]"), "self." + name};
  }

  int NextTap() { return tap_count_++; }
  // The next parameter's gradients, in terms of the method arguments a, g
  // and weights: each example's (`per_example`, [n, shape...]), their squared
  // norms ([n]) and their sum weighted by `weights` ([n]). The last two
  // default to computing them from `per_example`.
  void Gradient(const std::string& per_example, const std::string& squared_norms = "",
                const std::string& weighted = "") {
    gradients_body_ += absl::StrCat("    r.append(", per_example, ")\n");
    squared_norms_body_ +=
        absl::StrCat("    r.append(",
                     squared_norms.empty() ? absl::StrCat("self._squared_norms(", per_example, ")")
                                           : squared_norms,
                     ")\n");
    weighted_body_ += absl::StrCat(
        "    r.append(",
        weighted.empty() ? absl::StrCat("torch.tensordot(weights, ", per_example, ", [0], [0])")
                         : weighted,
        ")\n");
  }

  std::string Buffer(const std::string& dotted, torch::Tensor value) {
    const std::string name = AttributeName(dotted);
    module_->register_buffer(name, value);
    return "self." + name;
  }

  torch::jit::Module* module_;
  at::Generator generator_;
  std::string body_;
  std::string explained_body_;
  std::vector<std::string> feature_names_;
  std::string per_example_body_;
  std::string tapped_body_;
  std::string gradients_body_;
  std::string squared_norms_body_;
  std::string weighted_body_;
  int parameter_count_ = 0;
  int tap_count_ = 0;
  bool per_example_possible_ = true;
};

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_SCRIPT_BUILDER_H_
