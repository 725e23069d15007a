#include "coordinator/update_check.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {

using aggregator_internal::kFloatBytes;
using aggregator_internal::LoadFloat;

absl::StatusOr<double> CheckUpdateValues(const std::string& site,
                                         const std::vector<TensorSpec>& specs,
                                         BundleFileReader& update, BundleFileReader& global,
                                         double max_norm) {
  RETURN_IF_ERROR(aggregator_internal::CheckAllFloat32("the update check", specs));
  std::vector<char> buffer(kMaxChunkBytes);
  std::vector<char> base(kMaxChunkBytes);
  double squared = 0;
  RETURN_IF_ERROR(aggregator_internal::ForEachFiniteFloatRun(
      "aggregation", site, specs, update, buffer,
      [&](uint64_t first, const char* bytes, size_t count) -> absl::Status {
        // The global model is read in step with the update.
        size_t filled = 0;
        const size_t wanted = count * kFloatBytes;
        while (filled < wanted) {
          ASSIGN_OR_RETURN(size_t got, global.Read(base.data() + filled, wanted - filled));
          if (got == 0) {
            return absl::DataLossError(absl::StrCat("the global model ended before parameter ",
                                                    first + filled / kFloatBytes));
          }
          filled += got;
        }
        for (size_t i = 0; i < count; ++i) {
          const double delta = static_cast<double>(LoadFloat(bytes + i * kFloatBytes)) -
                               LoadFloat(base.data() + i * kFloatBytes);
          squared += delta * delta;
        }
        return absl::OkStatus();
      }));
  const double norm = std::sqrt(squared);
  if (max_norm > 0 && !(norm <= max_norm)) {
    return absl::InvalidArgumentError(
        absl::StrCat("update of site '", site, "' changes the model by ", norm,
                     " (L2), more than the run's bound of ", max_norm));
  }
  return norm;
}

}  // namespace fedmi
