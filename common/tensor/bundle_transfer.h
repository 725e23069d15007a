// Tensor-bundle operations for transfer learning and bring-your-own models,
// free of model code: picking the tensors a round trains, starting a model
// from another's weights by name and shape, and carrying a file (a
// TorchScript model) as a bundle of one uint8 tensor.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_TENSOR_BUNDLE_TRANSFER_H_
#define FEDMI_COMMON_TENSOR_BUNDLE_TRANSFER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi {

// The tensors of `bundle` named in `names`, in the bundle's order.
// InvalidArgument naming a name the bundle lacks.
absl::StatusOr<TensorBundle> SelectTensors(const TensorBundle& bundle,
                                           const std::vector<std::string>& names);

// What starting a model from given weights did, tensor by tensor.
struct InitialWeightsReport {
  std::vector<std::string> loaded;       // taken from the given weights
  std::vector<std::string> missing;      // the model has them, the weights do not
  std::vector<std::string> wrong_shape;  // "name: model [2,512], weights [1000,512]"
  std::vector<std::string> unused;       // the weights have them, the model does not
  // One line for logs and errors: "loaded 320 of 322 tensors; kept the
  // model's initialisation for fc.weight (model [2,512], weights
  // [1000,512]), fc.bias ...".
  std::string Summary() const;
};

// `model` (float32, the architecture's own initialisation) with every
// tensor that `weights` holds under the same name and shape replaced by
// the given values (float32 or float64, converted). With allow_partial,
// tensors the weights lack or hold with another shape keep their
// initialisation (a new classifier head); without it, any such tensor is
// InvalidArgument listing them all. Tensors of `weights` the model lacks
// are ignored either way, and named in the report; a weights file that
// matches no tensor at all is always refused.
absl::StatusOr<TensorBundle> ApplyInitialWeights(const TensorBundle& model,
                                                 const TensorBundle& weights, bool allow_partial,
                                                 InitialWeightsReport* report);

// A file's bytes as a bundle of one uint8 tensor named kFileTensorName:
// its body is the file, so the bundle's SHA-256 is the file's.
inline constexpr char kFileTensorName[] = "file";
TensorBundle FileAsBundle(std::string bytes);
// The file in a bundle from FileAsBundle; InvalidArgument for another layout.
absl::StatusOr<std::string> FileOfBundle(const TensorBundle& bundle);

// Lower-case hex SHA-256 of the bundle's body bytes: the content address the
// coordinator stores it under.
std::string BodySha256Hex(const TensorBundle& bundle);

}  // namespace fedmi

#endif  // FEDMI_COMMON_TENSOR_BUNDLE_TRANSFER_H_
