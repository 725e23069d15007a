// Hugging Face safetensors files for model weights, so fedmi's global models
// open directly in PyTorch (safetensors.torch.load_file) and other tools.
//
// Layout: 8-byte little-endian header length N; N bytes of JSON mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// into the byte buffer), plus an optional "__metadata__" object of string
// values; the JSON is padded with spaces so N is a multiple of 8; then the
// byte buffer. fedmi handles the dtypes F32, F64, I64, I32 and U8.
//
// Free functions without shared state; thread-safe for different paths.
#ifndef FEDMI_COMMON_TENSOR_SAFETENSORS_H_
#define FEDMI_COMMON_TENSOR_SAFETENSORS_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi {

// Writes `bundle` with its tensors laid out in bundle order, through an
// AtomicFile of `env`: readers see the old file or the whole new one, and
// both the data and the rename are fsynced. InvalidArgument when the body
// size does not match the specs, a name is empty, duplicated or
// "__metadata__"; the Env's error naming the path for I/O failures
// (ResourceExhausted for a full disk).
absl::Status WriteSafetensors(const std::string& path, const TensorBundle& bundle,
                              const std::map<std::string, std::string>& metadata = {},
                              Env& env = *Env::Default());

// Reads a safetensors file into a bundle whose tensors are ordered by their
// data offsets (the writer's order), and its "__metadata__" into `*metadata`
// when given. Errors name the file: NotFound if it does not exist;
// InvalidArgument for a truncated file, a header that is not a JSON object,
// an unsupported dtype, a negative or non-integer dimension, offsets that lie
// outside the buffer, disagree with dtype * shape, overlap or leave gaps.
absl::StatusOr<TensorBundle> ReadSafetensors(
    const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace fedmi

#endif  // FEDMI_COMMON_TENSOR_SAFETENSORS_H_
