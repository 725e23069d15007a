#include "common/tensor/tensor_bundle.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedmi {

namespace {

// Everything fedmi knows about each dtype, in one row.
struct DTypeInfo {
  DType dtype;
  const char* name;
  v1::DType proto;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat32, "float32", v1::DTYPE_FLOAT32, 4},
    {DType::kFloat64, "float64", v1::DTYPE_FLOAT64, 8},
    {DType::kInt64, "int64", v1::DTYPE_INT64, 8},
    {DType::kInt32, "int32", v1::DTYPE_INT32, 4},
    {DType::kUInt8, "uint8", v1::DTYPE_UINT8, 1},
};

const DTypeInfo* Find(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return &info;
  }
  return nullptr;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info != nullptr ? info->size : 0;
}

const char* DTypeName(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info != nullptr ? info->name : "unknown";
}

v1::DType DTypeToProto(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info != nullptr ? info->proto : v1::DTYPE_UNSPECIFIED;
}

absl::StatusOr<DType> DTypeFromProto(v1::DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.proto == dtype) return info.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown tensor dtype ", static_cast<int>(dtype)));
}

int64_t TensorSpec::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t TensorSpec::ByteSize() const {
  return static_cast<uint64_t>(NumElements()) * DTypeSize(dtype);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

uint64_t TotalBytes(const std::vector<TensorSpec>& specs) {
  uint64_t total = 0;
  for (const auto& spec : specs) total += spec.ByteSize();
  return total;
}

uint64_t TensorBundle::ExpectedBodyBytes() const { return TotalBytes(specs); }

uint64_t TensorBundle::OffsetOf(size_t index) const {
  uint64_t offset = 0;
  for (size_t i = 0; i < index && i < specs.size(); ++i) offset += specs[i].ByteSize();
  return offset;
}

int TensorBundle::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<std::vector<TensorSpec>> SpecsFromHeader(const v1::BundleHeader& header) {
  // 2^40 elements per tensor is far above any model fedmi serves and keeps
  // the byte arithmetic below overflow.
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  std::vector<TensorSpec> specs;
  specs.reserve(header.tensors_size());
  std::set<std::string> names;
  for (int i = 0; i < header.tensors_size(); ++i) {
    const v1::TensorSpec& proto = header.tensors(i);
    if (proto.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor #", i, " has an empty name"));
    }
    if (!names.insert(proto.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", proto.name(), "' appears twice"));
    }
    TensorSpec spec;
    spec.name = proto.name();
    auto dtype = DTypeFromProto(proto.dtype());
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", proto.name(), "': ", dtype.status().message()));
    }
    spec.dtype = *dtype;
    int64_t elements = 1;
    for (int64_t dim : proto.shape()) {
      if (dim < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", proto.name(), "' has negative dimension ", dim));
      }
      if (dim != 0 && elements > kMaxElements / dim) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' is too large"));
      }
      elements *= dim;
      spec.shape.push_back(dim);
    }
    specs.push_back(std::move(spec));
  }
  const uint64_t total = TotalBytes(specs);
  if (total != header.total_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle header says ", header.total_bytes(),
                                                   " body bytes but its tensors need ", total));
  }
  if (!header.sha256().empty() && header.sha256().size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle header sha256 has ", header.sha256().size(), " bytes, expected 32"));
  }
  return specs;
}

v1::BundleHeader HeaderFromSpecs(const std::vector<TensorSpec>& specs,
                                 const std::string& body_sha256) {
  v1::BundleHeader header;
  for (const auto& spec : specs) {
    v1::TensorSpec* proto = header.add_tensors();
    proto->set_name(spec.name);
    proto->set_dtype(DTypeToProto(spec.dtype));
    for (int64_t dim : spec.shape) proto->add_shape(dim);
  }
  header.set_total_bytes(TotalBytes(specs));
  header.set_sha256(body_sha256);
  return header;
}

absl::Status CheckSpecsMatch(const std::vector<TensorSpec>& got,
                             const std::vector<TensorSpec>& expected, const std::string& what) {
  for (size_t i = 0; i < got.size() && i < expected.size(); ++i) {
    const TensorSpec& g = got[i];
    const TensorSpec& e = expected[i];
    if (g.name != e.name) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " tensor #", i, " is named '", g.name, "', expected '", e.name, "'"));
    }
    if (g.dtype != e.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(what, " tensor '", g.name, "' has dtype ",
                                                     DTypeName(g.dtype), ", expected ",
                                                     DTypeName(e.dtype)));
    }
    if (g.shape != e.shape) {
      return absl::InvalidArgumentError(absl::StrCat(what, " tensor '", g.name, "' has shape ",
                                                     ShapeString(g.shape), ", expected ",
                                                     ShapeString(e.shape)));
    }
  }
  if (got.size() != expected.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", got.size(), " tensors, expected ", expected.size()));
  }
  return absl::OkStatus();
}

}  // namespace fedmi
