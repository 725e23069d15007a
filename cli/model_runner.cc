#include "cli/model_runner.h"

#include "absl/strings/str_cat.h"

namespace fedmi::cli {

absl::Status TrainingUnavailableError(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("`", what,
                   "` runs models, and this fedmi was built without training "
                   "(cmake -DFEDMI_WITH_TRAINING=ON)"));
}

}  // namespace fedmi::cli
