// A run spec as an admin sends it: protobuf parsing, then the coordinator's
// validation (which fills defaults and must name any bad field), then the
// JSON the audit log records.
#include "common/runspec/run_spec_json.h"
#include "coordinator/run_spec_validation.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fedmi::v1::RunSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::Status valid = fedmi::ValidateRunSpec(&spec);
  if (!valid.ok() && valid.message().empty()) abort();  // a refusal must say why
  (void)fedmi::RunSpecToJson(spec).dump();
  return 0;
}

namespace fedmi::fuzz {

std::vector<std::string> Seeds() {
  v1::RunSpec plain;
  plain.set_rounds(3);
  plain.set_min_sites(2);
  v1::RunSpec secure = plain;
  secure.set_min_sites(5);
  secure.set_secure_aggregation(true);
  secure.mutable_secagg()->set_threshold(3);
  secure.mutable_secagg()->set_clip(0.5);
  return {plain.SerializeAsString(), secure.SerializeAsString(), ""};
}

}  // namespace fedmi::fuzz
