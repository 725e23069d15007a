#include "common/tensor/bundle_transfer.h"

#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto/sha256.h"

namespace fedmi {

absl::StatusOr<TensorBundle> SelectTensors(const TensorBundle& bundle,
                                           const std::vector<std::string>& names) {
  const std::set<std::string> wanted(names.begin(), names.end());
  TensorBundle selected;
  uint64_t offset = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const TensorSpec& spec : bundle.specs) {
    if (wanted.count(spec.name) > 0) {
      selected.specs.push_back(spec);
      ranges.emplace_back(offset, spec.ByteSize());
    }
    offset += spec.ByteSize();
  }
  if (selected.specs.size() != wanted.size()) {
    for (const std::string& name : names) {
      if (bundle.IndexOf(name) < 0) {
        return absl::InvalidArgumentError(absl::StrCat("the model has no tensor '", name, "'"));
      }
    }
  }
  if (offset != bundle.body.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle body has ", bundle.body.size(), " bytes, its tensors need ", offset));
  }
  selected.body.reserve(selected.ExpectedBodyBytes());
  for (const auto& [start, size] : ranges) {
    selected.body.insert(selected.body.end(), bundle.body.begin() + start,
                         bundle.body.begin() + start + size);
  }
  return selected;
}

std::string InitialWeightsReport::Summary() const {
  std::string text = absl::StrCat("loaded ", loaded.size(), " of ",
                                  loaded.size() + missing.size() + wrong_shape.size(),
                                  " tensors from the initial weights");
  if (!wrong_shape.empty()) {
    absl::StrAppend(&text, "; different shape: ", absl::StrJoin(wrong_shape, ", "));
  }
  if (!missing.empty()) absl::StrAppend(&text, "; missing: ", absl::StrJoin(missing, ", "));
  if (!unused.empty()) {
    absl::StrAppend(
        &text, "; not in the model (ignored): ",
        unused.size() <= 8 ? absl::StrJoin(unused, ", ") : absl::StrCat(unused.size(), " tensors"));
  }
  return text;
}

absl::StatusOr<TensorBundle> ApplyInitialWeights(const TensorBundle& model,
                                                 const TensorBundle& weights, bool allow_partial,
                                                 InitialWeightsReport* report) {
  InitialWeightsReport local;
  InitialWeightsReport& r = report != nullptr ? *report : local;
  r = InitialWeightsReport();
  if (weights.body.size() != weights.ExpectedBodyBytes()) {
    return absl::InvalidArgumentError("the initial weights' body does not fit their tensors");
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < weights.specs.size(); ++i) index[weights.specs[i].name] = i;
  TensorBundle result = model;
  for (size_t i = 0; i < model.specs.size(); ++i) {
    const TensorSpec& target = model.specs[i];
    if (target.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat("model tensor '", target.name, "' is ",
                                                     DTypeName(target.dtype), ", not float32"));
    }
    auto found = index.find(target.name);
    if (found == index.end()) {
      r.missing.push_back(target.name);
      continue;
    }
    const size_t source_index = found->second;
    const TensorSpec& source = weights.specs[source_index];
    index.erase(found);
    if (source.shape != target.shape ||
        (source.dtype != DType::kFloat32 && source.dtype != DType::kFloat64)) {
      r.wrong_shape.push_back(absl::StrCat(target.name, " (model ", ShapeString(target.shape),
                                           ", weights ", DTypeName(source.dtype), " ",
                                           ShapeString(source.shape), ")"));
      continue;
    }
    const char* from = weights.body.data() + weights.OffsetOf(source_index);
    float* to = reinterpret_cast<float*>(result.body.data() + model.OffsetOf(i));
    const int64_t n = target.NumElements();
    if (source.dtype == DType::kFloat32) {
      std::memcpy(to, from, n * sizeof(float));
    } else {
      for (int64_t k = 0; k < n; ++k) {
        double value;
        std::memcpy(&value, from + k * sizeof(double), sizeof(double));
        to[k] = static_cast<float>(value);
      }
    }
    r.loaded.push_back(target.name);
  }
  for (const auto& [name, unused_index] : index) r.unused.push_back(name);
  if (r.loaded.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the initial weights match no tensor of the model: ", r.Summary()));
  }
  if (!allow_partial && (!r.missing.empty() || !r.wrong_shape.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the initial weights do not fit the model (--init-allow-partial keeps the model's own "
        "initialisation for these): ",
        r.Summary()));
  }
  return result;
}

TensorBundle FileAsBundle(std::string bytes) {
  TensorBundle bundle;
  bundle.specs.push_back(
      TensorSpec{kFileTensorName, DType::kUInt8, {static_cast<int64_t>(bytes.size())}});
  bundle.body.assign(bytes.begin(), bytes.end());
  return bundle;
}

absl::StatusOr<std::string> FileOfBundle(const TensorBundle& bundle) {
  if (bundle.specs.size() != 1 || bundle.specs[0].dtype != DType::kUInt8 ||
      bundle.specs[0].shape.size() != 1 || bundle.body.size() != bundle.ExpectedBodyBytes()) {
    return absl::InvalidArgumentError("the bundle is not a file (one uint8 tensor)");
  }
  return std::string(bundle.body.begin(), bundle.body.end());
}

std::string BodySha256Hex(const TensorBundle& bundle) {
  return HexEncode(Sha256::Digest(absl::string_view(bundle.body.data(), bundle.body.size())));
}

}  // namespace fedmi
