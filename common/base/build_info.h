// What a binary was built from, for `--version` on every fedmi binary and
// `fedmi version`: the git commit, the build type and whether the build has
// training (LibTorch). The commit comes from one small file generated at
// every build (cmake/BuildCommit.cmake); the rest is fixed at configure time.
#ifndef FEDMI_COMMON_BASE_BUILD_INFO_H_
#define FEDMI_COMMON_BASE_BUILD_INFO_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fedmi {

struct BuildInfo {
  std::string version;     // the project's version, "0.1.0"
  std::string commit;      // 12 hex digits, "-dirty" appended; "unknown" without git
  std::string build_type;  // CMAKE_BUILD_TYPE, "RelWithDebInfo"
  bool training = false;   // built with FEDMI_WITH_TRAINING (LibTorch)
  std::string libtorch;    // LibTorch's version when `training`, else ""
};

BuildInfo GetBuildInfo();

// What `program --version` prints, one fact a line:
//   fedmi 0.1.0
//   commit:     7c28e01a2b3c
//   build type: RelWithDebInfo
//   training:   built in (LibTorch 1.13.0)
// `binary_trains` false (the coordinator) says training is not in this
// binary even when the build has it.
std::string VersionText(absl::string_view program, bool binary_trains = true);

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_BUILD_INFO_H_
