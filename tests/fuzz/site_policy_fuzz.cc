// A hospital's policy file (TOML), which decides what may run on its data.
#include "client/site_policy.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto policy = fedmi::SitePolicy::Parse(
      absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  if (!policy.ok() && policy.status().message().empty()) abort();  // a refusal must say why
  return 0;
}

namespace fedmi::fuzz {

std::vector<std::string> Seeds() {
  return {
      "allowed_models = [\"cnn\", \"resnet18\"]\nmax_local_epochs = 5\n"
      "require_secure_aggregation = true\nrequire_differential_privacy = false\n",
      "allowed_spec_sha256 = [\"" + std::string(64, 'a') +
          "\"]\n"
          "coordinator_fingerprint = \"" +
          std::string(64, 'b') + "\"\n",
      ""};
}

}  // namespace fedmi::fuzz
