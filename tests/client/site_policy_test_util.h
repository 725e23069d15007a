// Helpers shared by the tests of client/site_policy.h: a run spec every
// default policy accepts, and files read and written whole.
#ifndef FEDMI_TESTS_CLIENT_SITE_POLICY_TEST_UTIL_H_
#define FEDMI_TESTS_CLIENT_SITE_POLICY_TEST_UTIL_H_

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "client/site_policy.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

inline v1::RunSpec CnnSpec() {
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_strategy("fedavg");
  spec.set_rounds(5);
  spec.set_min_sites(2);
  spec.set_local_epochs(1);
  spec.set_batch_size(64);
  spec.set_lr(1e-3);
  spec.set_seed(7);
  spec.set_num_classes(2);
  spec.set_optimizer("adam");
  spec.set_round_timeout_s(3600);
  return spec;
}

inline absl::StatusOr<SitePolicy> ParsePolicy(const std::string& toml) {
  return SitePolicy::Parse(toml, "policy.toml");
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_CLIENT_SITE_POLICY_TEST_UTIL_H_
