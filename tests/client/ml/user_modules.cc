#include "tests/client/ml/user_modules.h"

#include <torch/script.h>

#include "absl/strings/str_cat.h"

namespace fedmi::user_modules {
namespace {

torch::jit::Module NewModule(const std::string& class_name) {
  torch::jit::Module module{c10::QualifiedName(class_name)};
  module.register_attribute("training", c10::BoolType::get(), true);
  return module;
}

}  // namespace

absl::Status WriteUserClassifier(const std::string& path, int64_t channels, int64_t outputs,
                                 uint64_t seed) {
  try {
    torch::manual_seed(seed);
    torch::jit::Module features = NewModule("__torch__.user.Features");
    features.register_parameter("weight", torch::randn({8, channels, 3, 3}) * 0.3, false);
    features.register_parameter("bias", torch::zeros({8}), false);
    torch::jit::Module norm = NewModule("__torch__.user.Norm");
    norm.register_parameter("weight", torch::ones({8}), false);
    norm.register_parameter("bias", torch::zeros({8}), false);
    norm.register_buffer("running_mean", torch::zeros({8}));
    norm.register_buffer("running_var", torch::ones({8}));
    norm.register_buffer("num_batches_tracked", torch::zeros({}, torch::kInt64));
    norm.define(R"(
def forward(self, x):
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-5, False)
)");
    features.register_module("norm", norm);
    features.define(R"(
def forward(self, x):
    return torch.relu(self.norm.forward(torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1])))
)");
    torch::jit::Module head = NewModule("__torch__.user.Head");
    head.register_parameter("weight", torch::randn({outputs, 8}) * 0.3, false);
    head.register_parameter("bias", torch::zeros({outputs}), false);
    head.define(R"(
def forward(self, x):
    return torch.linear(x, self.weight, self.bias)
)");
    torch::jit::Module net = NewModule("__torch__.user.Net");
    net.register_module("features", features);
    net.register_module("head", head);
    net.define(R"(
def forward(self, x):
    x = self.features.forward(x)
    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)
    return self.head.forward(x)
)");
    net.save(path);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the user module: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status WriteUserSegmenter(const std::string& path, int64_t channels, uint64_t seed) {
  try {
    torch::manual_seed(seed);
    torch::jit::Module encoder = NewModule("__torch__.user.Encoder");
    encoder.register_parameter("conv1_weight", torch::randn({8, channels, 3, 3}) * 0.3, false);
    encoder.register_parameter("conv1_bias", torch::zeros({8}), false);
    encoder.register_parameter("conv2_weight", torch::randn({8, 8, 3, 3}) * 0.15, false);
    encoder.register_parameter("conv2_bias", torch::zeros({8}), false);
    encoder.define(R"(
def forward(self, x):
    x = torch.relu(torch.conv2d(x, self.conv1_weight, self.conv1_bias, [1, 1], [1, 1]))
    return torch.relu(torch.conv2d(x, self.conv2_weight, self.conv2_bias, [1, 1], [2, 2], [2, 2]))
)");
    torch::jit::Module head = NewModule("__torch__.user.MaskHead");
    head.register_parameter("weight", torch::randn({1, 8, 1, 1}) * 0.3, false);
    head.register_parameter("bias", torch::zeros({1}), false);
    head.define(R"(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias)
)");
    torch::jit::Module net = NewModule("__torch__.user.Segmenter");
    net.register_module("encoder", encoder);
    net.register_module("head", head);
    net.define(R"(
def forward(self, x):
    return self.head.forward(self.encoder.forward(x))
)");
    net.save(path);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the user module: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status WriteUserModuleReturningTuple(const std::string& path) {
  try {
    torch::jit::Module net = NewModule("__torch__.user.Pair");
    net.register_parameter("scale", torch::ones({1}), false);
    net.define(R"(
def forward(self, x):
    return x * self.scale, x
)");
    net.save(path);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("building the user module: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace fedmi::user_modules
