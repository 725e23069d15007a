#include "common/tensor/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A safetensors file with the given header JSON (unpadded) and buffer.
void WriteRaw(const std::string& path, const std::string& header, const std::string& buffer) {
  std::string out;
  uint64_t length = header.size();
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((length >> (8 * b)) & 0xff));
  out += header + buffer;
  std::ofstream(path, std::ios::binary) << out;
}

TensorBundle SampleBundle() {
  TensorBundle bundle;
  bundle.specs = {{"conv.weight", DType::kFloat32, {2, 1, 1}},
                  {"step", DType::kInt64, {}},
                  {"mask", DType::kUInt8, {3}},
                  {"empty", DType::kFloat64, {0, 4}},
                  {"ids", DType::kInt32, {1}},
                  {"bias", DType::kFloat64, {1}}};
  const float weights[2] = {0.5f, -1.25f};
  const int64_t step = 7;
  const uint8_t mask[3] = {1, 0, 1};
  const int32_t ids = -3;
  const double bias = 2.5;
  auto append = [&bundle](const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    bundle.body.insert(bundle.body.end(), bytes, bytes + size);
  };
  append(weights, sizeof(weights));
  append(&step, sizeof(step));
  append(mask, sizeof(mask));
  append(&ids, sizeof(ids));
  append(&bias, sizeof(bias));
  return bundle;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  ScratchDir dir_;
};

TEST_F(SafetensorsTest, RoundTripsBundleAndMetadata) {
  const TensorBundle bundle = SampleBundle();
  ASSERT_EQ(bundle.body.size(), bundle.ExpectedBodyBytes());
  const std::string path = dir_.Join("model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, bundle, {{"round", "3"}, {"format", "pt"}}).ok());

  std::map<std::string, std::string> metadata;
  absl::StatusOr<TensorBundle> read = ReadSafetensors(path, &metadata);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->specs, bundle.specs);
  EXPECT_EQ(read->body, bundle.body);
  EXPECT_THAT(metadata, ElementsAre(std::pair<const std::string, std::string>("format", "pt"),
                                    std::pair<const std::string, std::string>("round", "3")));
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_.path())) ++files;
  EXPECT_EQ(files, 1);  // No temporary file left behind.
}

TEST_F(SafetensorsTest, WritesSpecLayout) {
  TensorBundle bundle;
  bundle.specs = {{"w", DType::kFloat32, {2}}};
  bundle.body.resize(8, 0);
  const std::string path = dir_.Join("w.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, bundle).ok());
  const std::string bytes = ReadAll(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);  // little-endian host
  EXPECT_EQ(header_length % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header_length + 8);
  const std::string header = bytes.substr(8, header_length);
  EXPECT_THAT(header, HasSubstr("\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"));
  EXPECT_THAT(header, ::testing::Not(HasSubstr("__metadata__")));
}

TEST_F(SafetensorsTest, OrdersTensorsByOffsetNotHeaderOrder) {
  const std::string path = dir_.Join("reordered.safetensors");
  WriteRaw(path,
           R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
           R"("__metadata__":{"note":"hi"},)"
           R"("a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
           std::string("\x01\x00\x00\x00\x05\x06", 6));
  absl::StatusOr<TensorBundle> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->specs.size(), 2u);
  EXPECT_EQ(read->specs[0].name, "a");
  EXPECT_EQ(read->specs[1].name, "b");
  EXPECT_EQ(read->IndexOf("b"), 1);
  EXPECT_EQ(read->body[4], 5);
}

TEST_F(SafetensorsTest, ReadErrorsArePrecise) {
  EXPECT_THAT(ReadSafetensors(dir_.Join("none.safetensors")),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(dir_.Join("none.safetensors") + " does not exist")));

  const std::string tiny = dir_.Join("tiny.safetensors");
  std::ofstream(tiny) << "abc";
  EXPECT_THAT(ReadSafetensors(tiny),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("file has only 3 bytes")));

  const std::string long_header = dir_.Join("long.safetensors");
  WriteRaw(long_header, "{}", "");
  std::string bytes = ReadAll(long_header);
  bytes[0] = 100;
  std::ofstream(long_header, std::ios::binary) << bytes;
  EXPECT_THAT(ReadSafetensors(long_header),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("header length 100 exceeds the 2 bytes")));

  const auto expect_header_error = [this](const std::string& header, const std::string& buffer,
                                          const std::string& substring) {
    const std::string path = dir_.Join("case.safetensors");
    WriteRaw(path, header, buffer);
    EXPECT_THAT(ReadSafetensors(path),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(substring)));
  };
  expect_header_error("[1, 2]", "", "header is not a JSON object");
  expect_header_error("{not json", "", "header is not a JSON object");
  expect_header_error(R"({"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", "ab",
                      "tensor 'x' dtype BF16 is not supported");
  expect_header_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd",
                      "tensor 'x' has data_offsets [0, 4] spanning 4 bytes, but F32 [2] needs 8");
  expect_header_error(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "ab",
                      "outside the 2-byte buffer");
  expect_header_error(R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", "",
                      "not a non-negative integer");
  expect_header_error(R"({"x":{"dtype":"U8","shape":[1]}})", "a", "no \"data_offsets\"");
  expect_header_error(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "ab",
                      "tensor 'x' starts at byte 1 but the previous tensor ends at 0 (gap)");
  expect_header_error(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                      R"("y":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                      "abc", "(overlap)");
  expect_header_error(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "ab",
                      "tensors cover 1 bytes but the buffer has 2");
  expect_header_error(R"({"__metadata__":{"k":1}})", "", "__metadata__ value of 'k'");
}

TEST_F(SafetensorsTest, WriteRejectsInconsistentBundles) {
  const std::string path = dir_.Join("bad.safetensors");
  TensorBundle bundle;
  bundle.specs = {{"w", DType::kFloat32, {2}}};
  bundle.body.resize(7);
  EXPECT_THAT(WriteSafetensors(path, bundle),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bundle body has 7 bytes but its tensors need 8")));

  bundle.specs = {{"w", DType::kUInt8, {1}}, {"w", DType::kUInt8, {1}}};
  bundle.body.resize(2);
  EXPECT_THAT(WriteSafetensors(path, bundle),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor name 'w' is empty, reserved or duplicated")));
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(SafetensorsTest, AFullDiskKeepsTheOldFileWholeAndLeavesNoTemporary) {
  const std::string path = dir_.Join("model.safetensors");
  ASSERT_THAT(WriteSafetensors(path, SampleBundle(), {{"round", "1"}}), IsOk());
  const std::string before = ReadAll(path);

  FaultInjectionEnv env;
  env.FailWritesAfter(16);
  EXPECT_THAT(WriteSafetensors(path, SampleBundle(), {{"round", "2"}}, env),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(dir_.path())));
  EXPECT_EQ(ReadAll(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()), 1);

  env.FailCommits(absl::InternalError("Input/output error"));
  env.FailWritesAfter(1 << 20);
  EXPECT_THAT(WriteSafetensors(path, SampleBundle(), {{"round", "2"}}, env),
              StatusIs(absl::StatusCode::kInternal, HasSubstr(path)));
  EXPECT_EQ(ReadAll(path), before);
}

}  // namespace
}  // namespace fedmi
