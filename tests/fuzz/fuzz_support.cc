#include <google/protobuf/stubs/logging.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/fuzz/fuzz_target.h"

namespace fedmi::fuzz {
namespace {

// Malformed input is the point here; protobuf's complaint about each one
// would drown the fuzzer's own output.
const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

}  // namespace

std::string ScratchFile(const char* name) {
  static const std::string dir = [] {
    std::string path =
        (std::filesystem::temp_directory_path() / absl::StrCat("fedmi-fuzz-", getpid())).string();
    std::filesystem::create_directories(path);
    return path;
  }();
  return absl::StrCat(dir, "/", name);
}

}  // namespace fedmi::fuzz
