// Helpers shared by all tests: Status matchers and a scratch directory that
// removes itself.
#ifndef FEDMI_TESTS_TEST_UTIL_H_
#define FEDMI_TESTS_TEST_UTIL_H_

#include <google/protobuf/util/message_differencer.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/tensor/tensor_bundle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi {

// A bundle of `specs` whose body is `values` as raw float32 bytes (tests may
// pass a body that does not fit the specs, on purpose).
inline TensorBundle FloatBundle(const std::vector<TensorSpec>& specs,
                                const std::vector<float>& values) {
  TensorBundle bundle;
  bundle.specs = specs;
  bundle.body.resize(values.size() * sizeof(float));
  std::memcpy(bundle.body.data(), values.data(), bundle.body.size());
  return bundle;
}

// The body of `bundle` read as float32 values.
inline std::vector<float> FloatsOf(const TensorBundle& bundle) {
  std::vector<float> values(bundle.body.size() / sizeof(float));
  std::memcpy(values.data(), bundle.body.data(), values.size() * sizeof(float));
  return values;
}
namespace testing_internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace testing_internal

// EXPECT_THAT(status_or_statusor, IsOk());
MATCHER(IsOk, "is OK") {
  const absl::Status& status = testing_internal::StatusOf(arg);
  *result_listener << "status is " << status;
  return status.ok();
}

// EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, HasSubstr("run 7")));
MATCHER_P2(StatusIs, code, message_matcher,
           absl::StrCat("has code ", absl::StatusCodeToString(code))) {
  const absl::Status& status = testing_internal::StatusOf(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

// EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound)), whatever the message.
MATCHER_P(StatusIs, code, absl::StrCat("has code ", absl::StatusCodeToString(code))) {
  const absl::Status& status = testing_internal::StatusOf(arg);
  *result_listener << "status is " << status;
  return status.code() == code;
}

// Compares protobuf messages field by field.
MATCHER_P(EqualsProto, expected, expected.ShortDebugString()) {
  *result_listener << arg.ShortDebugString();
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

#define FEDMI_TEST_CONCAT_INNER_(a, b) a##b
#define FEDMI_TEST_CONCAT_(a, b) FEDMI_TEST_CONCAT_INNER_(a, b)

// ASSERT_OK_AND_ASSIGN(auto x, MakeX()); fails the test on an error.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(FEDMI_TEST_CONCAT_(fedmi_test_statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  ASSERT_TRUE(statusor.ok()) << statusor.status();       \
  lhs = std::move(statusor).value()

// A fresh directory under the test's temp dir, removed with its contents.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = ::testing::TempDir() + "/fedmi-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << pattern;
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace fedmi

#endif  // FEDMI_TESTS_TEST_UTIL_H_
