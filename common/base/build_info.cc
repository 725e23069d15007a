#include "common/base/build_info.h"

#include "absl/strings/str_cat.h"

namespace fedmi {

// Defined in the generated build_commit.cc.
const char* BuildCommit();

BuildInfo GetBuildInfo() {
  BuildInfo info;
  info.version = FEDMI_VERSION;
  info.commit = BuildCommit();
  info.build_type = FEDMI_BUILD_TYPE;
  info.training = FEDMI_TRAINING != 0;
  info.libtorch = FEDMI_LIBTORCH_VERSION;
  return info;
}

std::string VersionText(absl::string_view program, bool binary_trains) {
  const BuildInfo info = GetBuildInfo();
  std::string training;
  if (!binary_trains) {
    training = "not in this binary";
  } else if (info.training) {
    training = absl::StrCat("built in (LibTorch ", info.libtorch, ")");
  } else {
    training = "not built in (FEDMI_WITH_TRAINING=OFF)";
  }
  return absl::StrCat(program, " ", info.version, "\ncommit:     ", info.commit,
                      "\nbuild type: ", info.build_type.empty() ? "none" : info.build_type,
                      "\ntraining:   ", training);
}

}  // namespace fedmi
