// An update as the coordinator reads it from its spool: the bundle file
// parser, the layout check against the global model, and the value check
// (finite, norm bound) that runs before any aggregation.
#include <fstream>

#include "common/tensor/tensor_codec.h"
#include "coordinator/update_check.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

fedmi::TensorBundle Global() {
  fedmi::TensorBundle bundle;
  bundle.specs = {{"w", fedmi::DType::kFloat32, {3, 4}}, {"b", fedmi::DType::kFloat32, {3}}};
  bundle.body.assign(bundle.ExpectedBodyBytes(), '\0');
  return bundle;
}

const std::string& GlobalPath() {
  static const std::string* path = [] {
    auto written = fedmi::WriteBundleFile(fedmi::fuzz::ScratchFile(""), Global());
    if (!written.ok()) abort();
    return new std::string(*written);
  }();
  return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fedmi::fuzz::ScratchFile("update.bundle");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto update = fedmi::BundleFileReader::Open(path);
  if (!update.ok()) return 0;
  const fedmi::TensorBundle global = Global();
  if (!fedmi::CheckSpecsMatch((*update)->specs(), global.specs).ok()) return 0;
  auto values = fedmi::ScanUpdateFile("fuzz", global.specs, path, GlobalPath());
  if (values.ok()) (void)fedmi::CheckUpdateValues("fuzz", *values, 100.0);
  return 0;
}

namespace fedmi::fuzz {

std::vector<std::string> Seeds() {
  TensorBundle update = Global();
  for (size_t i = 0; i < update.body.size(); i += 4) update.body[i + 3] = '\x3f';  // ~0.5
  auto path = WriteBundleFile(ScratchFile(""), update);
  if (!path.ok()) abort();
  std::ifstream in(*path, std::ios::binary);
  return {std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>())};
}

}  // namespace fedmi::fuzz
