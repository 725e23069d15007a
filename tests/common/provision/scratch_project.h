// Test support for the crypto and provision tests: a fixture whose SetUp
// creates a project CA ("stmarys") in a scratch directory, and small file
// helpers. Header-only; each test binary gets its own copy.
#ifndef FEDMI_TESTS_COMMON_PROVISION_SCRATCH_PROJECT_H_
#define FEDMI_TESTS_COMMON_PROVISION_SCRATCH_PROJECT_H_

#include <sys/stat.h>

#include <memory>
#include <string>

#include "common/base/env.h"
#include "common/provision/project_ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {

inline mode_t FileMode(const std::string& path) {
  struct stat info;
  EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 0777;
}

inline std::string ReadOrDie(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  EXPECT_THAT(contents, IsOk());
  return contents.value_or("");
}

class ScratchProjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = ProjectCa::Create(dir_.path(), "stmarys");
    ASSERT_THAT(ca, IsOk());
    ca_ = std::move(ca).value();
  }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
};

}  // namespace fedmi

#endif  // FEDMI_TESTS_COMMON_PROVISION_SCRATCH_PROJECT_H_
