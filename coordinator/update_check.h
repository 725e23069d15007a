// Checks a plaintext model update before any of it reaches an aggregator, so
// that a refused update leaves the round as it was: every float32 value is
// finite, and the L2 norm of the update's change to the global model stays
// within the run's bound. (Masked updates of secure aggregation cannot be
// read; there the sites' clip bounds each value instead.)
#ifndef FEDMI_COORDINATOR_UPDATE_CHECK_H_
#define FEDMI_COORDINATOR_UPDATE_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {

// `update` and `global` are positioned at the start of their bodies and both
// have exactly `specs` (float32). `max_norm` <= 0 means no bound. Returns the
// norm ||update - global||_2. InvalidArgument naming the site and the tensor
// and element of a NaN or infinity ("update of site 'site-2' has nan in
// tensor 'fc.weight' at element 17; ..."), or the norm and the bound ("update
// of site 'site-2' changes the model by 31.4 (L2), more than the run's bound
// of 10"); errors of the readers as they are.
absl::StatusOr<double> CheckUpdateValues(const std::string& site,
                                         const std::vector<TensorSpec>& specs,
                                         BundleFileReader& update, BundleFileReader& global,
                                         double max_norm);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_UPDATE_CHECK_H_
