// TorchScript modules as a user would bring them (`fedmi run start
// --model-file`), built in C++ with torch::jit::Module::define so that no
// Python is needed: submodules with their own forward, dotted tensor names.
// Test support; LibTorch stays inside user_modules.cc.
#ifndef FEDMI_TESTS_CLIENT_ML_USER_MODULES_H_
#define FEDMI_TESTS_CLIENT_ML_USER_MODULES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace fedmi::user_modules {

// Writes a small CNN to `path`: `features` (3x3 conv, 8 channels, ReLU,
// with a BatchNorm whose int64 num_batches_tracked stays local) and `head`
// (linear layer after global average pooling) with `outputs` logits. Its
// weights come from `seed`.
absl::Status WriteUserClassifier(const std::string& path, int64_t channels, int64_t outputs,
                                 uint64_t seed);

// Writes a small fully convolutional segmenter to `path`: `encoder` (two
// 3x3 convolutions, 8 channels, ReLU) and `head` (1x1 convolution to one
// mask-logit channel), mapping N,channels,H,W to N,1,H,W. Weights from
// `seed`.
absl::Status WriteUserSegmenter(const std::string& path, int64_t channels, uint64_t seed);

// A module whose forward returns a tuple, not a tensor.
absl::Status WriteUserModuleReturningTuple(const std::string& path);

}  // namespace fedmi::user_modules

#endif  // FEDMI_TESTS_CLIENT_ML_USER_MODULES_H_
