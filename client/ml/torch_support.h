// Internal to fedmi_ml: the LibTorch glue local_model.cc and dp_sgd.cc
// share. Includes LibTorch; only fedmi_ml's own translation units (and its
// tests) may include it.
#ifndef FEDMI_CLIENT_ML_TORCH_SUPPORT_H_
#define FEDMI_CLIENT_ML_TORCH_SUPPORT_H_

#include <torch/script.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"

namespace fedmi::ml {

// Runs `body`, turning the exceptions LibTorch throws into a Status that
// names the operation.
template <typename Body>
auto CatchTorch(const std::string& operation, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(operation, ": out of memory: ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(operation, ": LibTorch error: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(operation, ": ", e.what()));
  }
}

// Views (no copy) of a data set's pixels as N,H,W,C uint8 and labels as N.
// Both alias `data`, which must outlive them and is never written through.
inline torch::Tensor PixelView(const ImageSet& data) {
  return torch::from_blob(const_cast<uint8_t*>(data.pixels.data()),
                          {data.size(), data.height, data.width, data.channels}, torch::kUInt8);
}
inline torch::Tensor LabelView(const ImageSet& data) {
  return torch::from_blob(const_cast<int64_t*>(data.labels.data()), {data.size()}, torch::kInt64);
}

// uint8 N,H,W,C -> float N,C,H,W scaled to [-1, 1].
inline torch::Tensor ToModelInput(const torch::Tensor& pixels) {
  return pixels.permute({0, 3, 1, 2})
      .to(torch::kFloat32)
      .div_(255.0)
      .sub_(0.5)
      .div_(0.5)
      .contiguous();
}

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_TORCH_SUPPORT_H_
