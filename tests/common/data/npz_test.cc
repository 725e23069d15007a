#include "common/data/npz.h"

#include <zip.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Writes a zip whose members are the given raw bytes, deflated or stored, to
// build archives numpy would write (and broken ones it would not).
void WriteZip(const std::string& path, const std::map<std::string, std::string>& members,
              bool deflate) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_NE(archive, nullptr);
  for (const auto& [name, bytes] : members) {
    zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
    ASSERT_NE(source, nullptr);
    const zip_int64_t index = zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0);
    ASSERT_EQ(zip_set_file_compression(archive, index, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 9),
              0);
  }
  ASSERT_EQ(zip_close(archive), 0);
}

// A hand-made .npy as numpy 1.x writes it, with the given header dict.
std::string NpyBytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const uint32_t len = header.size();
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  if (major != 1) {
    out.push_back(0);
    out.push_back(0);
  }
  return out + header + data;
}

class NpzTest : public ::testing::Test {
 protected:
  ScratchDir dir_;
};

TEST_F(NpzTest, RoundTripsSeveralDtypesAndShapes) {
  std::map<std::string, NpyArray> arrays;
  arrays["images"] = {"|u1", {2, 2, 3}, std::vector<char>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}};
  NpyArray floats{"<f4", {3}, {}};
  for (float f : {1.5f, -2.0f, 0.25f}) {
    const char* bytes = reinterpret_cast<const char*>(&f);
    floats.data.insert(floats.data.end(), bytes, bytes + 4);
  }
  arrays["floats"] = floats;
  arrays["scalar"] = {"<i8", {}, std::vector<char>(8, 0)};
  arrays["empty"] = {"<i4", {0, 5}, {}};
  const std::string path = dir_.Join("round.npz");
  ASSERT_TRUE(WriteNpz(path, arrays).ok());

  absl::StatusOr<std::map<std::string, NpyArray>> read = ReadNpz(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 4u);
  for (const auto& [name, array] : arrays) {
    SCOPED_TRACE(name);
    const NpyArray& got = read->at(name);
    EXPECT_EQ(got.dtype, array.dtype);
    EXPECT_EQ(got.shape, array.shape);
    EXPECT_EQ(got.data, array.data);
  }
  // No temporary file is left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_.path()))
    ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(NpzTest, WritesNumpyCompatibleHeader) {
  const std::string path = dir_.Join("header.npz");
  ASSERT_TRUE(WriteNpz(path, {{"x", {"|u1", {3}, {7, 8, 9}}}}).ok());
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &error);
  ASSERT_NE(archive, nullptr);
  zip_stat_t stat;
  ASSERT_EQ(zip_stat(archive, "x.npy", 0, &stat), 0);
  std::string bytes(stat.size, '\0');
  zip_file_t* file = zip_fopen(archive, "x.npy", 0);
  ASSERT_EQ(zip_fread(file, bytes.data(), stat.size), static_cast<zip_int64_t>(stat.size));
  zip_fclose(file);
  zip_discard(archive);

  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes.size(), 128u + 3u);  // Data starts 64-byte aligned.
  EXPECT_THAT(bytes, HasSubstr("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }"));
  EXPECT_EQ(bytes[127], '\n');
}

TEST_F(NpzTest, ReadsDeflatedMembersAndVersion2Headers) {
  const std::string path = dir_.Join("deflated.npz");
  WriteZip(path,
           {{"a.npy", NpyBytes("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 1), }",
                               std::string("\x01\x00\xff\xff", 4))},
            {"b.npy", NpyBytes("{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (4L,)}",
                               "abcd", /*major=*/2)},
            {"notes.txt", "ignored"}},
           /*deflate=*/true);
  absl::StatusOr<std::map<std::string, NpyArray>> read = ReadNpz(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ(read->at("a").dtype, "<i2");
  EXPECT_THAT(read->at("a").shape, ElementsAre(2, 1));
  EXPECT_THAT(read->at("b").shape, ElementsAre(4));
  EXPECT_EQ(std::string(read->at("b").data.begin(), read->at("b").data.end()), "abcd");
}

TEST_F(NpzTest, EmptyArchiveRoundTrips) {
  const std::string path = dir_.Join("empty.npz");
  const absl::Status written = WriteNpz(path, {});
  ASSERT_TRUE(written.ok()) << written;
  absl::StatusOr<std::map<std::string, NpyArray>> read = ReadNpz(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());
}

TEST_F(NpzTest, MissingFileIsNotFound) {
  EXPECT_THAT(
      ReadNpz(dir_.Join("nope.npz")),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir_.Join("nope.npz") + " does not exist")));
}

TEST_F(NpzTest, NonZipIsInvalid) {
  const std::string path = dir_.Join("text.npz");
  std::ofstream(path) << "this is not a zip archive at all";
  EXPECT_THAT(ReadNpz(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr(path + " is not a zip archive")));
}

TEST_F(NpzTest, MemberWithoutMagicIsInvalid) {
  const std::string path = dir_.Join("bad.npz");
  WriteZip(path, {{"x.npy", "garbage bytes"}}, /*deflate=*/false);
  EXPECT_THAT(
      ReadNpz(path),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("member 'x' is not a valid .npy array: missing the \\x93NUMPY magic")));
}

TEST_F(NpzTest, ShortDataIsInvalid) {
  const std::string path = dir_.Join("short.npz");
  WriteZip(path,
           {{"x.npy", NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                               std::string(20, '\0'))}},
           /*deflate=*/true);
  const absl::Status status = ReadNpz(path).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data is 20 bytes")));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need 24")));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)));
}

TEST_F(NpzTest, FortranOrderIsRejected) {
  const std::string path = dir_.Join("fortran.npz");
  WriteZip(path,
           {{"x.npy", NpyBytes("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2), }",
                               std::string(4, '\0'))}},
           /*deflate=*/false);
  EXPECT_THAT(ReadNpz(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fortran_order is True")));
}

TEST_F(NpzTest, StructuredAndUnknownDtypesAreRejected) {
  const std::string path = dir_.Join("structured.npz");
  WriteZip(path,
           {{"x.npy", NpyBytes("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }",
                               std::string(4, '\0'))}},
           /*deflate=*/false);
  EXPECT_THAT(ReadNpz(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("structured dtype")));

  const std::string object_path = dir_.Join("object.npz");
  WriteZip(object_path,
           {{"x.npy", NpyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                               std::string(8, '\0'))}},
           /*deflate=*/false);
  EXPECT_THAT(ReadNpz(object_path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'|O'")));
}

TEST_F(NpzTest, UnsupportedVersionIsRejected) {
  const std::string path = dir_.Join("v9.npz");
  std::string bytes = NpyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }", "a");
  bytes[6] = 9;
  WriteZip(path, {{"x.npy", bytes}}, /*deflate=*/false);
  EXPECT_THAT(ReadNpz(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("format version 9.0 is not supported")));
}

TEST_F(NpzTest, WriteRejectsInconsistentArray) {
  const std::string path = dir_.Join("out.npz");
  EXPECT_THAT(
      WriteNpz(path, {{"x", {"<f4", {2, 2}, std::vector<char>(15)}}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 16 bytes of data but has 15")));
  EXPECT_THAT(WriteNpz(path, {{"x", {"f4", {1}, std::vector<char>(4)}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("member 'x'")));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(NpyItemSizeTest, ParsesSimpleDescrs) {
  EXPECT_EQ(*NpyItemSize("|u1"), 1);
  EXPECT_EQ(*NpyItemSize("<f8"), 8);
  EXPECT_EQ(*NpyItemSize(">i4"), 4);
  EXPECT_EQ(NpyItemSize("<U10").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NpyItemSize("<f").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NpzRealDataTest, ReadsPneumoniaMnist) {
  const char* source_dir = std::getenv("FEDMI_SOURCE_DIR");
  const std::string path =
      std::string(source_dir != nullptr ? source_dir : ".") + "/../shared/data/pneumoniamnist.npz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not present";
  absl::StatusOr<std::map<std::string, NpyArray>> arrays = ReadNpz(path);
  ASSERT_TRUE(arrays.ok()) << arrays.status();
  EXPECT_EQ(arrays->size(), 6u);
  EXPECT_EQ(arrays->at("train_images").dtype, "|u1");
  EXPECT_THAT(arrays->at("train_images").shape, ElementsAre(4708, 28, 28));
  EXPECT_THAT(arrays->at("train_labels").shape, ElementsAre(4708, 1));
  EXPECT_THAT(arrays->at("val_images").shape, ElementsAre(524, 28, 28));
  EXPECT_THAT(arrays->at("test_images").shape, ElementsAre(624, 28, 28));
}

TEST_F(NpzTest, AFullDiskKeepsTheOldArchiveAndAHealedDiskReplacesIt) {
  const std::string path = dir_.Join("data.npz");
  ASSERT_THAT(WriteNpz(path, {{"x", {"|u1", {3}, {7, 8, 9}}}}), IsOk());
  ASSERT_OK_AND_ASSIGN(auto before, ReadNpz(path));

  FaultInjectionEnv env;
  env.FailWritesAfter(64);
  EXPECT_THAT(WriteNpz(path, {{"y", {"|u1", {2}, {1, 2}}}}, env),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(dir_.path())));
  ASSERT_OK_AND_ASSIGN(auto after_failure, ReadNpz(path));
  EXPECT_EQ(after_failure.count("x"), 1u);
  EXPECT_EQ(after_failure.count("y"), 0u);

  env.Heal();
  ASSERT_THAT(WriteNpz(path, {{"y", {"|u1", {2}, {1, 2}}}}, env), IsOk());
  ASSERT_OK_AND_ASSIGN(auto replaced, ReadNpz(path));
  EXPECT_EQ(replaced.count("y"), 1u);
  EXPECT_EQ(env.commits(), 1);
}

}  // namespace
}  // namespace fedmi
