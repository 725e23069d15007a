// torchvision's DenseNet-121, ResNet-50 and MobileNetV2 and the U-Net of
// mateuszbuda/brain-segmentation-pytorch, written with ScriptBuilder. Every
// parameter and buffer has the name and shape of the PyTorch module's
// state_dict entry, in the same order, except that torchvision's int64
// num_batches_tracked buffers are left out (fedmi's wire holds float
// tensors, and momentum 0.1 never reads them): torchvision's
// model.load_state_dict(sd, strict=False) takes fedmi's weights.
// tests/client/ml/torchvision_names_test.cc checks this against lists that
// bench/torchvision_names.py wrote.
#include <torch/script.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "client/ml/architecture_builders.h"
#include "client/ml/local_model.h"
#include "client/ml/script_builder.h"

namespace fedmi::ml {
namespace {

// conv, BatchNorm and ReLU, the unit of DenseNet's stem and ResNet's.
void ConvNormRelu(ScriptBuilder& b, const std::string& conv, const std::string& norm,
                  const std::string& input, int64_t in, int64_t out, int64_t kernel, int64_t stride,
                  int64_t padding, bool fan_out) {
  b.Statement("x = " + b.Conv(conv, input, in, out, kernel, stride, padding, false, 1, fan_out));
  b.Statement("x = torch.relu(" + b.BatchNorm(norm, "x", out) + ")");
}

}  // namespace

// DenseNet-121 (Huang et al. 2017), CheXNet's network: growth rate 32,
// blocks of 6, 12, 24 and 16 layers, bottleneck width 4 x 32. torchvision
// inits convs Kaiming normal (fan-in) and the classifier's bias to 0.
void BuildDenseNet121(const ModelConfig& config, ScriptBuilder& b) {
  constexpr int64_t kGrowth = 32, kBottleneck = 4 * kGrowth;
  const int kLayers[] = {6, 12, 24, 16};
  ConvNormRelu(b, "features.conv0", "features.norm0", "x", config.channels, 64, 7, 2, 3, false);
  b.Statement("x = torch.max_pool2d(x, [3, 3], [2, 2], [1, 1])");
  int64_t channels = 64;
  for (int block = 0; block < 4; ++block) {
    const std::string p = absl::StrCat("features.denseblock", block + 1, ".");
    for (int layer = 0; layer < kLayers[block]; ++layer) {
      const std::string l = absl::StrCat(p, "denselayer", layer + 1, ".");
      b.Statement("y = torch.relu(" + b.BatchNorm(l + "norm1", "x", channels) + ")");
      b.Statement("y = " + b.Conv(l + "conv1", "y", channels, kBottleneck, 1, 1, 0, false));
      b.Statement("y = torch.relu(" + b.BatchNorm(l + "norm2", "y", kBottleneck) + ")");
      b.Statement("y = " + b.Conv(l + "conv2", "y", kBottleneck, kGrowth, 3, 1, 1, false));
      b.Statement("x = torch.cat([x, y], 1)");
      channels += kGrowth;
    }
    b.Feature(absl::StrCat("features.denseblock", block + 1));
    if (block < 3) {
      const std::string t = absl::StrCat("features.transition", block + 1, ".");
      b.Statement("x = torch.relu(" + b.BatchNorm(t + "norm", "x", channels) + ")");
      b.Statement("x = " + b.Conv(t + "conv", "x", channels, channels / 2, 1, 1, 0, false));
      b.Statement("x = torch.avg_pool2d(x, [2, 2], [2, 2])");
      channels /= 2;
    }
  }
  b.Statement("x = " + b.BatchNorm("features.norm5", "x", channels));
  // The last feature map before pooling, as torchvision's `features` ends.
  b.Feature("features.norm5");
  b.Statement("x = torch.flatten(torch.adaptive_avg_pool2d(torch.relu(x), [1, 1]), 1)");
  b.Statement("x = " + b.Linear("classifier", "x", channels, config.num_classes, false));
}

// ResNet-50 (He et al. 2016) as torchvision builds it ("v1.5": the stride
// sits on each Bottleneck's 3x3 conv): a 7x7 stride-2 stem and max-pool,
// then 3, 4, 6 and 3 Bottlenecks of widths 64..512, expanded 4 times.
void BuildResNet50(const ModelConfig& config, ScriptBuilder& b) {
  ConvNormRelu(b, "conv1", "bn1", "x", config.channels, 64, 7, 2, 3, true);
  b.Statement("x = torch.max_pool2d(x, [3, 3], [2, 2], [1, 1])");
  const int kBlocks[] = {3, 4, 6, 3};
  int64_t in = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t width = int64_t{64} << stage, out = 4 * width;
    for (int block = 0; block < kBlocks[stage]; ++block) {
      const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      const std::string p = absl::StrCat("layer", stage + 1, ".", block, ".");
      b.Statement("out = " + b.Conv(p + "conv1", "x", in, width, 1, 1, 0, false, 1, true));
      b.Statement("out = torch.relu(" + b.BatchNorm(p + "bn1", "out", width) + ")");
      b.Statement("out = " +
                  b.Conv(p + "conv2", "out", width, width, 3, stride, 1, false, 1, true));
      b.Statement("out = torch.relu(" + b.BatchNorm(p + "bn2", "out", width) + ")");
      b.Statement("out = " + b.Conv(p + "conv3", "out", width, out, 1, 1, 0, false, 1, true));
      b.Statement("out = " + b.BatchNorm(p + "bn3", "out", out));
      if (stride != 1 || in != out) {
        b.Statement("shortcut = " +
                    b.Conv(p + "downsample.0", "x", in, out, 1, stride, 0, false, 1, true));
        b.Statement("shortcut = " + b.BatchNorm(p + "downsample.1", "shortcut", out));
        b.Statement("x = torch.relu(out + shortcut)");
      } else {
        b.Statement("x = torch.relu(out + x)");
      }
      in = out;
    }
    b.Feature(absl::StrCat("layer", stage + 1));
  }
  b.Statement("x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)");
  b.Statement("x = " + b.Linear("fc", "x", in, config.num_classes, false));
}

namespace {

// torchvision's Conv2dNormActivation with ReLU6: `name`.0 conv, `name`.1
// BatchNorm; depthwise when groups == in.
void ConvNormRelu6(ScriptBuilder& b, const std::string& name, int64_t in, int64_t out,
                   int64_t kernel, int64_t stride, int64_t groups) {
  b.Statement("x = " + b.Conv(name + ".0", "x", in, out, kernel, stride, (kernel - 1) / 2, false,
                              groups, true));
  b.Statement("x = torch.hardtanh(" + b.BatchNorm(name + ".1", "x", out) + ", 0., 6.)");
}

}  // namespace

// MobileNetV2 (Sandler et al. 2018), width 1.0: inverted residual blocks
// (1x1 expansion, 3x3 depthwise, linear 1x1 projection), ReLU6, dropout 0.2
// before the classifier. The classifier gets PyTorch's default uniform init
// where torchvision draws N(0, 0.01); both start with small logits.
void BuildMobileNetV2(const ModelConfig& config, ScriptBuilder& b) {
  struct Stage {
    int64_t expansion, out, repeats, stride;
  };
  const Stage kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                           {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  ConvNormRelu6(b, "features.0", config.channels, 32, 3, 2, 1);
  int64_t in = 32;
  int index = 1;
  for (const Stage& stage : kStages) {
    for (int64_t i = 0; i < stage.repeats; ++i, ++index) {
      const int64_t stride = i == 0 ? stage.stride : 1;
      const int64_t hidden = in * stage.expansion;
      const bool residual = stride == 1 && in == stage.out;
      const std::string p = absl::StrCat("features.", index, ".conv.");
      if (residual) b.Statement("identity = x");
      int part = 0;
      if (stage.expansion != 1) ConvNormRelu6(b, p + std::to_string(part++), in, hidden, 1, 1, 1);
      ConvNormRelu6(b, p + std::to_string(part++), hidden, hidden, 3, stride, hidden);
      b.Statement("x = " + b.Conv(p + std::to_string(part), "x", hidden, stage.out, 1, 1, 0, false,
                                  1, true));
      b.Statement("x = " + b.BatchNorm(p + std::to_string(part + 1), "x", stage.out));
      if (residual) b.Statement("x = x + identity");
      in = stage.out;
    }
    // The ends of the stages at strides 4, 8, 16 and 32.
    if (index - 1 == 3 || index - 1 == 6 || index - 1 == 13 || index - 1 == 17) {
      b.Feature(absl::StrCat("features.", index - 1));
    }
  }
  ConvNormRelu6(b, "features.18", in, 1280, 1, 1, 1);
  b.Feature("features.18");
  b.Statement("x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)");
  b.Statement("x = torch.dropout(x, 0.2, self.training)");
  b.Statement("x = " + b.Linear("classifier.1", "x", 1280, config.num_classes, false));
}

namespace {

// The U-Net's block: two 3x3 convs, each with BatchNorm and ReLU, named
// like the hub's `<module>.<prefix>conv1` ... `<prefix>norm2`.
void UNetBlock(ScriptBuilder& b, const std::string& module, const std::string& prefix,
               const std::string& variable, const std::string& input, int64_t in, int64_t out) {
  const std::string p = module + "." + prefix;
  b.Statement(variable + " = " + b.Conv(p + "conv1", input, in, out, 3, 1, 1, false));
  b.Statement(variable + " = torch.relu(" + b.BatchNorm(p + "norm1", variable, out) + ")");
  b.Statement(variable + " = " + b.Conv(p + "conv2", variable, out, out, 3, 1, 1, false));
  b.Statement(variable + " = torch.relu(" + b.BatchNorm(p + "norm2", variable, out) + ")");
}

}  // namespace

// U-Net (Ronneberger et al. 2015) as torch.hub's
// mateuszbuda/brain-segmentation-pytorch writes it, with depth poolings
// (the hub: 4) and base_width channels in the first block (the hub: 32),
// doubling per level. Returns logits, not the hub's sigmoid: one channel
// (foreground) for num_classes == 2, else one per class. Convs get Kaiming
// normal init where the hub keeps PyTorch's default uniform.
void BuildUNet(const ModelConfig& config, ScriptBuilder& b) {
  const int64_t depth = config.depth, f = config.base_width;
  std::string input = "x";
  int64_t in = config.channels;
  for (int64_t level = 1; level <= depth; ++level) {
    const std::string enc = absl::StrCat("enc", level);
    UNetBlock(b, absl::StrCat("encoder", level), enc, enc, input, in, f << (level - 1));
    in = f << (level - 1);
    input = absl::StrCat("torch.max_pool2d(", enc, ", [2, 2], [2, 2])");
  }
  UNetBlock(b, "bottleneck", "bottleneck", "x", input, in, f << depth);
  b.Feature("bottleneck");
  for (int64_t level = depth; level >= 1; --level) {
    const int64_t out = f << (level - 1);
    b.Statement("x = " + b.ConvTranspose(absl::StrCat("upconv", level), "x", 2 * out, out, 2));
    b.Statement(absl::StrCat("x = torch.cat([x, enc", level, "], 1)"));
    UNetBlock(b, absl::StrCat("decoder", level), absl::StrCat("dec", level), "x", "x", 2 * out,
              out);
    b.Feature(absl::StrCat("decoder", level));
  }
  const int64_t mask_channels = config.num_classes == 2 ? 1 : config.num_classes;
  b.Statement("x = " + b.Conv("conv", "x", f, mask_channels, 1, 1, 0, true));
}

}  // namespace fedmi::ml
