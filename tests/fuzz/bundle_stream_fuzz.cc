// BundleStreamReader, the first code that touches an upload's bytes: the
// input is a sequence of records (u16 little-endian length, then that many
// bytes parsed as a fedmi.v1.TensorChunk). The first byte chooses whether
// the header must match an expected layout.
#include <cstring>

#include "common/tensor/tensor_codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

const std::vector<fedmi::TensorSpec>& Expected() {
  static const auto* specs = new std::vector<fedmi::TensorSpec>{
      {"fc.weight", fedmi::DType::kFloat32, {2, 3}}, {"fc.bias", fedmi::DType::kFloat32, {2}}};
  return *specs;
}

std::string Record(const fedmi::v1::TensorChunk& chunk) {
  const std::string bytes = chunk.SerializeAsString();
  const uint16_t size = static_cast<uint16_t>(bytes.size());
  std::string out(2, '\0');
  std::memcpy(out.data(), &size, 2);
  return out + bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  fedmi::BundleStreamReader::Options options;
  options.expected = data[0] % 2 == 0 ? &Expected() : nullptr;
  options.max_body_bytes = 1 << 16;
  std::vector<char> body;
  fedmi::MemoryBodySink sink(&body);
  fedmi::BundleStreamReader reader(options, &sink);
  size_t at = 1;
  while (at + 2 <= size) {
    uint16_t length;
    std::memcpy(&length, data + at, 2);
    at += 2;
    if (length > size - at) length = static_cast<uint16_t>(size - at);
    fedmi::v1::TensorChunk chunk;
    const bool parsed = chunk.ParseFromArray(data + at, length);
    at += length;
    if (!parsed) continue;
    if (!reader.Add(chunk).ok()) return 0;
  }
  (void)reader.Finish();
  return 0;
}

namespace fedmi::fuzz {

std::vector<std::string> Seeds() {
  TensorBundle bundle;
  bundle.specs = Expected();
  bundle.body.assign(bundle.ExpectedBodyBytes(), '\x01');
  std::string stream;
  (void)StreamBundle(bundle, [&](const v1::TensorChunk& chunk) {
    stream += Record(chunk);
    return true;
  });
  return {std::string(1, '\0') + stream, std::string(1, '\1') + stream, std::string(1, '\0')};
}

}  // namespace fedmi::fuzz
