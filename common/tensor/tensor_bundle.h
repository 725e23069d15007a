// Model weights as fedmi moves and stores them: an ordered list of named
// tensors (name, dtype, shape) plus their raw little-endian bytes,
// concatenated in list order. The coordinator never runs model code; it only
// sees bundles.
//
// Value types; not thread-safe to mutate concurrently.
#ifndef FEDMI_COMMON_TENSOR_TENSOR_BUNDLE_H_
#define FEDMI_COMMON_TENSOR_TENSOR_BUNDLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fedmi/v1/tensor.pb.h"

namespace fedmi {

enum class DType { kFloat32, kFloat64, kInt64, kInt32, kUInt8 };

size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);  // "float32", ...
v1::DType DTypeToProto(DType dtype);
absl::StatusOr<DType> DTypeFromProto(v1::DType dtype);

struct TensorSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;

  int64_t NumElements() const;
  uint64_t ByteSize() const;
  bool operator==(const TensorSpec& other) const {
    return name == other.name && dtype == other.dtype && shape == other.shape;
  }
};

std::string ShapeString(const std::vector<int64_t>& shape);  // "[2,64]"

struct TensorBundle {
  std::vector<TensorSpec> specs;
  std::vector<char> body;  // bytes of specs[0], then specs[1], ...

  uint64_t ExpectedBodyBytes() const;
  // Byte offset of tensor `index` inside `body`.
  uint64_t OffsetOf(size_t index) const;
  // Index of the tensor called `name`, or -1.
  int IndexOf(const std::string& name) const;
};

uint64_t TotalBytes(const std::vector<TensorSpec>& specs);

// Converts between the wire header and specs. FromProto rejects unknown
// dtypes, negative dimensions, empty or duplicate names and a total byte count
// that does not match the shapes.
absl::StatusOr<std::vector<TensorSpec>> SpecsFromHeader(const v1::BundleHeader& header);
v1::BundleHeader HeaderFromSpecs(const std::vector<TensorSpec>& specs,
                                 const std::string& body_sha256);

// Checks that `got` describes exactly `expected`, naming the first mismatch:
// "update tensor 'fc.weight' has shape [2,128], expected [2,64]".
absl::Status CheckSpecsMatch(const std::vector<TensorSpec>& got,
                             const std::vector<TensorSpec>& expected,
                             const std::string& what = "update");

}  // namespace fedmi

#endif  // FEDMI_COMMON_TENSOR_TENSOR_BUNDLE_H_
