#include "common/tensor/tensor_codec.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/tensor/tensor_bundle.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/common/tensor/chunk_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// Several dtypes, and more than one chunk of body: 300 * 1024 float32 values
// alone are 1.17 MiB.
TensorBundle MakeMixedBundle() {
  TensorBundle bundle;
  bundle.specs = {
      {"conv.weight", DType::kFloat32, {300, 1024}},
      {"conv.bias", DType::kFloat64, {7}},
      {"bn.num_batches", DType::kInt64, {3}},
      {"index", DType::kInt32, {2, 2}},
      {"mask", DType::kUInt8, {5}},
  };
  bundle.body.resize(bundle.ExpectedBodyBytes());
  for (size_t i = 0; i < bundle.body.size(); ++i) {
    bundle.body[i] = static_cast<char>((i * 131 + 7) % 251);
  }
  return bundle;
}

TensorBundle MakeSmallBundle() {
  TensorBundle bundle;
  bundle.specs = {{"fc.weight", DType::kFloat32, {2, 64}}, {"fc.bias", DType::kFloat32, {2}}};
  bundle.body.resize(bundle.ExpectedBodyBytes());
  for (size_t i = 0; i < bundle.body.size(); ++i) bundle.body[i] = static_cast<char>(i);
  return bundle;
}

std::vector<v1::TensorChunk> Chunks(const TensorBundle& bundle) {
  std::vector<v1::TensorChunk> chunks;
  absl::Status status = StreamBundle(bundle, [&](const v1::TensorChunk& chunk) {
    chunks.push_back(chunk);
    return true;
  });
  EXPECT_THAT(status, IsOk());
  return chunks;
}

// --- SHA-256 and hex ----------------------------------------------------------

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(HexEncode(Sha256::Digest("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256::Digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256::Digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, IncrementalMatchesOneShotOnAMillionAs) {
  Sha256 hasher;
  const std::string thousand(1000, 'a');
  for (int i = 0; i < 1000; ++i) hasher.Update(thousand);
  hasher.Update(nullptr, 0);
  const std::string digest = hasher.Final();
  EXPECT_THAT(digest, SizeIs(32));
  EXPECT_EQ(HexEncode(digest), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(digest, Sha256::Digest(std::string(1000000, 'a')));
}

TEST(HexTest, EncodesLowerCase) {
  EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(HexEncode(""), "");
}

TEST(HexTest, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string decoded;
  ASSERT_TRUE(HexDecode(HexEncode(all), &decoded));
  EXPECT_EQ(decoded, all);
}

TEST(HexTest, DecodesUpperCase) {
  std::string decoded;
  ASSERT_TRUE(HexDecode("BA78aB", &decoded));
  EXPECT_EQ(decoded, std::string("\xba\x78\xab", 3));
}

TEST(HexTest, RejectsOddLengthAndNonHexDigits) {
  std::string decoded;
  EXPECT_FALSE(HexDecode("abc", &decoded));
  EXPECT_FALSE(HexDecode("zz", &decoded));
  EXPECT_FALSE(HexDecode("0g", &decoded));
  EXPECT_FALSE(HexDecode("-1", &decoded));
}

// --- Specs and headers --------------------------------------------------------

TEST(TensorBundleTest, SizesOffsetsAndNames) {
  TensorBundle bundle = MakeMixedBundle();
  EXPECT_EQ(bundle.ExpectedBodyBytes(), 300u * 1024 * 4 + 7 * 8 + 3 * 8 + 4 * 4 + 5);
  EXPECT_EQ(bundle.OffsetOf(0), 0u);
  EXPECT_EQ(bundle.OffsetOf(1), 300u * 1024 * 4);
  EXPECT_EQ(bundle.OffsetOf(4), 300u * 1024 * 4 + 7 * 8 + 3 * 8 + 4 * 4);
  EXPECT_EQ(bundle.IndexOf("index"), 3);
  EXPECT_EQ(bundle.IndexOf("absent"), -1);
  EXPECT_EQ(ShapeString({2, 64}), "[2,64]");
  EXPECT_EQ(ShapeString({}), "[]");
}

TEST(TensorBundleTest, HeaderRoundTrip) {
  TensorBundle bundle = MakeMixedBundle();
  v1::BundleHeader header = HeaderFromSpecs(bundle.specs, std::string(32, 'x'));
  EXPECT_EQ(header.total_bytes(), bundle.ExpectedBodyBytes());
  ASSERT_OK_AND_ASSIGN(std::vector<TensorSpec> specs, SpecsFromHeader(header));
  EXPECT_EQ(specs, bundle.specs);
}

TEST(TensorBundleTest, HeaderWithShortSha256IsRejected) {
  v1::BundleHeader header = HeaderFromSpecs(MakeSmallBundle().specs, "short");
  EXPECT_THAT(SpecsFromHeader(header),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 32")));
}

TEST(TensorBundleTest, HeaderWithEmptyNameIsRejected) {
  v1::BundleHeader header = HeaderFromSpecs({{"", DType::kFloat32, {1}}}, "");
  EXPECT_THAT(SpecsFromHeader(header),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty name")));
}

TEST(TensorBundleTest, CheckSpecsMatchNamesTheFirstDifference) {
  const std::vector<TensorSpec> expected = {{"a", DType::kFloat32, {2}},
                                            {"b", DType::kFloat32, {3}}};
  EXPECT_THAT(CheckSpecsMatch(expected, expected), IsOk());
  EXPECT_THAT(CheckSpecsMatch({{"a", DType::kFloat32, {2}}, {"c", DType::kFloat32, {3}}}, expected),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor #1 is named 'c', expected 'b'")));
  EXPECT_THAT(
      CheckSpecsMatch({{"a", DType::kInt64, {2}}, {"b", DType::kFloat32, {3}}}, expected, "model"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("model tensor 'a' has dtype int64, expected float32")));
  EXPECT_THAT(
      CheckSpecsMatch({{"a", DType::kFloat32, {2}}}, expected),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("update has 1 tensors, expected 2")));
}

// --- Streaming ----------------------------------------------------------------

TEST(TensorCodecTest, StreamRoundTripsAMultiChunkBundle) {
  const TensorBundle bundle = MakeMixedBundle();
  ASSERT_GT(bundle.body.size(), kMaxChunkBytes);
  const std::vector<v1::TensorChunk> chunks = Chunks(bundle);

  // Senders fill chunks to a quarter of the cap (tensor_codec.cc).
  constexpr size_t kSendChunkBytes = kMaxChunkBytes / 4;
  ASSERT_THAT(chunks, SizeIs(1 + (bundle.body.size() + kSendChunkBytes - 1) / kSendChunkBytes));
  ASSERT_TRUE(chunks[0].has_header());
  EXPECT_EQ(chunks[0].header().total_bytes(), bundle.body.size());
  EXPECT_EQ(chunks[0].header().sha256(),
            Sha256::Digest(absl::string_view(bundle.body.data(), bundle.body.size())));
  for (size_t i = 1; i < chunks.size(); ++i) {
    ASSERT_EQ(chunks[i].payload_case(), v1::TensorChunk::kData) << "chunk " << i;
    EXPECT_LE(chunks[i].data().size(), kMaxChunkBytes);
  }
  EXPECT_EQ(chunks[1].data().size(), kSendChunkBytes);

  std::vector<char> body;
  MemoryBodySink sink(&body);
  BundleStreamReader reader(BundleStreamReader::Options(), &sink);
  EXPECT_FALSE(reader.has_header());
  for (const auto& chunk : chunks) ASSERT_THAT(reader.Add(chunk), IsOk());
  ASSERT_THAT(reader.Finish(), IsOk());
  EXPECT_TRUE(reader.has_header());
  EXPECT_EQ(reader.specs(), bundle.specs);
  EXPECT_EQ(reader.body_bytes(), bundle.body.size());
  EXPECT_EQ(reader.sha256(), chunks[0].header().sha256());
  EXPECT_EQ(body, bundle.body);
}

TEST(TensorCodecTest, DecodeChunksWithMatchingExpectedSpecs) {
  const TensorBundle bundle = MakeMixedBundle();
  ASSERT_OK_AND_ASSIGN(TensorBundle decoded, DecodeChunks(Chunks(bundle), &bundle.specs));
  EXPECT_EQ(decoded.specs, bundle.specs);
  EXPECT_EQ(decoded.body, bundle.body);
}

TEST(TensorCodecTest, EmptyBundleRoundTrips) {
  TensorBundle empty;
  const std::vector<v1::TensorChunk> chunks = Chunks(empty);
  ASSERT_THAT(chunks, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(TensorBundle decoded, DecodeChunks(chunks));
  EXPECT_TRUE(decoded.specs.empty());
  EXPECT_TRUE(decoded.body.empty());
}

TEST(TensorCodecTest, StreamBundleRefusesABodyOfTheWrongSize) {
  TensorBundle bundle = MakeSmallBundle();
  bundle.body.pop_back();
  EXPECT_THAT(StreamBundle(bundle, [](const v1::TensorChunk&) { return true; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensors need")));
}

TEST(TensorCodecTest, StreamBundleReportsABrokenStream) {
  const TensorBundle bundle = MakeMixedBundle();
  EXPECT_THAT(StreamBundle(bundle, [](const v1::TensorChunk&) { return false; }),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("header")));
  int calls = 0;
  EXPECT_THAT(StreamBundle(bundle, [&](const v1::TensorChunk&) { return ++calls < 2; }),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("body")));
}

TEST(TensorCodecTest, BodyBeforeHeaderIsRejected) {
  EXPECT_THAT(DecodeChunks({DataChunk("abcd")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("before its header")));
}

TEST(TensorCodecTest, SecondHeaderIsRejected) {
  std::vector<v1::TensorChunk> chunks = Chunks(MakeSmallBundle());
  chunks.push_back(chunks[0]);
  EXPECT_THAT(DecodeChunks(chunks),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("second header")));
}

TEST(TensorCodecTest, EmptyChunkAndMissingHeaderAreRejected) {
  EXPECT_THAT(DecodeChunks({v1::TensorChunk()}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk is empty")));
  EXPECT_THAT(DecodeChunks({}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no header")));
}

TEST(TensorCodecTest, TruncatedBodyIsDataLossAtFinish) {
  std::vector<v1::TensorChunk> chunks = Chunks(MakeMixedBundle());
  chunks.pop_back();
  std::vector<char> body;
  MemoryBodySink sink(&body);
  BundleStreamReader reader(BundleStreamReader::Options(), &sink);
  for (const auto& chunk : chunks) ASSERT_THAT(reader.Add(chunk), IsOk());
  EXPECT_THAT(reader.Finish(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

TEST(TensorCodecTest, BodyLongerThanDeclaredIsRejected) {
  std::vector<v1::TensorChunk> chunks = Chunks(MakeSmallBundle());
  chunks.push_back(DataChunk("x"));
  EXPECT_THAT(DecodeChunks(chunks),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than the 520 bytes")));
}

TEST(TensorCodecTest, CorruptByteIsDataLoss) {
  std::vector<v1::TensorChunk> chunks = Chunks(MakeMixedBundle());
  std::string data = chunks[2].data();
  data[data.size() / 2] ^= 0x01;
  chunks[2].set_data(data);
  EXPECT_THAT(DecodeChunks(chunks), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
}

TEST(TensorCodecTest, HeaderWithoutSha256SkipsTheCheck) {
  std::vector<v1::TensorChunk> chunks = Chunks(MakeSmallBundle());
  chunks[0].mutable_header()->clear_sha256();
  ASSERT_OK_AND_ASSIGN(TensorBundle decoded, DecodeChunks(chunks));
  EXPECT_EQ(decoded.body, MakeSmallBundle().body);
}

TEST(TensorCodecTest, ChunkAboveTheLimitIsRejected) {
  // A tensor large enough that an oversized chunk is not also "too long".
  const std::vector<TensorSpec> specs = {{"big", DType::kUInt8, {2 * int64_t{kMaxChunkBytes}}}};
  EXPECT_THAT(DecodeChunks({HeaderChunk(HeaderFromSpecs(specs, "")),
                            DataChunk(std::string(kMaxChunkBytes + 1, 'a'))}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk limit")));
}

TEST(TensorCodecTest, HeaderTotalBytesMustMatchShapes) {
  v1::BundleHeader header = HeaderFromSpecs(MakeSmallBundle().specs, "");
  header.set_total_bytes(header.total_bytes() + 4);
  EXPECT_THAT(DecodeChunks({HeaderChunk(header)}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("header says 524 body bytes but its tensors need 520")));
}

TEST(TensorCodecTest, NegativeDimensionIsRejected) {
  v1::BundleHeader header = HeaderFromSpecs({{"fc.weight", DType::kFloat32, {2, 3}}}, "");
  header.mutable_tensors(0)->set_shape(1, -3);
  EXPECT_THAT(DecodeChunks({HeaderChunk(header)}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'fc.weight' has negative dimension -3")));
}

TEST(TensorCodecTest, OverflowingShapeIsRejected) {
  v1::BundleHeader header =
      HeaderFromSpecs({{"huge", DType::kFloat32, {int64_t{1} << 30, int64_t{1} << 30}}}, "");
  EXPECT_THAT(DecodeChunks({HeaderChunk(header)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'huge' is too large")));
}

TEST(TensorCodecTest, DuplicateTensorNameIsRejected) {
  v1::BundleHeader header =
      HeaderFromSpecs({{"fc.bias", DType::kFloat32, {2}}, {"fc.bias", DType::kFloat32, {2}}}, "");
  EXPECT_THAT(DecodeChunks({HeaderChunk(header)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'fc.bias' appears twice")));
}

TEST(TensorCodecTest, UnknownDtypeIsRejected) {
  v1::BundleHeader header = HeaderFromSpecs({{"fc.bias", DType::kFloat32, {2}}}, "");
  header.mutable_tensors(0)->set_dtype(static_cast<v1::DType>(99));
  EXPECT_THAT(DecodeChunks({HeaderChunk(header)}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'fc.bias': unknown tensor dtype 99")));
  header.mutable_tensors(0)->set_dtype(v1::DTYPE_UNSPECIFIED);
  EXPECT_THAT(DecodeChunks({HeaderChunk(header)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown tensor dtype 0")));
}

TEST(TensorCodecTest, ExpectedShapeMismatchNamesTensorAndBothShapes) {
  TensorBundle bundle;
  bundle.specs = {{"fc.weight", DType::kFloat32, {2, 128}}};
  bundle.body.resize(bundle.ExpectedBodyBytes());
  const std::vector<TensorSpec> expected = {{"fc.weight", DType::kFloat32, {2, 64}}};
  EXPECT_THAT(DecodeChunks(Chunks(bundle), &expected),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'fc.weight' has shape [2,128], expected [2,64]")));
}

TEST(TensorCodecTest, ExpectedMismatchUsesTheReadersName) {
  TensorBundle bundle;
  bundle.specs = {{"fc.weight", DType::kFloat32, {2, 128}}};
  bundle.body.resize(bundle.ExpectedBodyBytes());
  const std::vector<TensorSpec> expected = {{"fc.weight", DType::kFloat32, {2, 64}}};
  std::vector<char> body;
  MemoryBodySink sink(&body);
  BundleStreamReader::Options options;
  options.expected = &expected;
  options.what = "update";
  BundleStreamReader reader(options, &sink);
  EXPECT_THAT(reader.Add(Chunks(bundle)[0]),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update tensor 'fc.weight' has shape [2,128], expected [2,64]")));
  EXPECT_FALSE(reader.has_header());
}

TEST(TensorCodecTest, WrongTensorCountIsRejected) {
  const TensorBundle bundle = MakeSmallBundle();
  std::vector<TensorSpec> expected = bundle.specs;
  expected.push_back({"extra", DType::kFloat32, {1}});
  EXPECT_THAT(DecodeChunks(Chunks(bundle), &expected),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has 2 tensors, expected 3")));
}

TEST(TensorCodecTest, BodyAboveMaxBodyBytesIsResourceExhausted) {
  const TensorBundle bundle = MakeSmallBundle();
  std::vector<char> body;
  MemoryBodySink sink(&body);
  BundleStreamReader::Options options;
  options.max_body_bytes = 512;
  options.what = "update";
  BundleStreamReader reader(options, &sink);
  EXPECT_THAT(reader.Add(Chunks(bundle)[0]),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("update has 520 bytes, above the limit of 512")));
  EXPECT_FALSE(reader.has_header());
}

// A sink that fails, as a spool file on a full disk would.
class FailingSink : public BodySink {
 public:
  absl::Status Write(const char*, size_t) override {
    return absl::ResourceExhaustedError("disk full");
  }
};

TEST(TensorCodecTest, SinkErrorsPropagate) {
  FailingSink sink;
  BundleStreamReader reader(BundleStreamReader::Options(), &sink);
  const std::vector<v1::TensorChunk> chunks = Chunks(MakeSmallBundle());
  ASSERT_THAT(reader.Add(chunks[0]), IsOk());
  EXPECT_THAT(reader.Add(chunks[1]),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("disk full")));
}

// --- Bundle files -------------------------------------------------------------

class BundleFileTest : public ::testing::Test {
 protected:
  // Writes `bytes` to a new file in the scratch dir and returns its path.
  std::string WriteRaw(const std::string& name, const std::string& bytes) {
    const std::string path = dir_.Join(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string ReadRaw(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  size_t FileCount() const {
    size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      (void)entry;
      ++count;
    }
    return count;
  }

  ScratchDir dir_;
};

TEST_F(BundleFileTest, WriteReadRoundTripNamedBySha256) {
  const TensorBundle bundle = MakeMixedBundle();
  std::string sha256;
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), bundle, &sha256));
  EXPECT_EQ(sha256, Sha256::Digest(absl::string_view(bundle.body.data(), bundle.body.size())));
  EXPECT_EQ(path, dir_.Join(HexEncode(sha256)));
  EXPECT_EQ(FileCount(), 1u);  // no temp file left behind

  ASSERT_OK_AND_ASSIGN(TensorBundle read, ReadBundleFile(path));
  EXPECT_EQ(read.specs, bundle.specs);
  EXPECT_EQ(read.body, bundle.body);

  const std::string raw = ReadRaw(path);
  EXPECT_EQ(raw.substr(0, 8), "FEDMIBN1");
}

TEST_F(BundleFileTest, ReaderReadsInPiecesAndThenReturnsZero) {
  const TensorBundle bundle = MakeSmallBundle();
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), bundle));
  ASSERT_OK_AND_ASSIGN(auto reader, BundleFileReader::Open(path));
  EXPECT_EQ(reader->specs(), bundle.specs);
  EXPECT_EQ(reader->body_bytes(), bundle.body.size());
  std::vector<char> body;
  char buffer[100];
  while (true) {
    ASSERT_OK_AND_ASSIGN(size_t got, reader->Read(buffer, sizeof(buffer)));
    if (got == 0) break;
    EXPECT_LE(got, sizeof(buffer));
    body.insert(body.end(), buffer, buffer + got);
  }
  EXPECT_EQ(body, bundle.body);
}

TEST_F(BundleFileTest, StreamBundleFileDecodesToTheSameBundle) {
  const TensorBundle bundle = MakeMixedBundle();
  std::string sha256;
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), bundle, &sha256));
  std::vector<v1::TensorChunk> chunks;
  ASSERT_THAT(StreamBundleFile(path, sha256,
                               [&](const v1::TensorChunk& chunk) {
                                 chunks.push_back(chunk);
                                 return true;
                               }),
              IsOk());
  // A header, then the body in quarter-cap chunks (tensor_codec.cc).
  ASSERT_THAT(chunks,
              SizeIs(1 + (bundle.body.size() + kMaxChunkBytes / 4 - 1) / (kMaxChunkBytes / 4)));
  EXPECT_EQ(chunks[0].header().sha256(), sha256);
  ASSERT_OK_AND_ASSIGN(TensorBundle decoded, DecodeChunks(chunks, &bundle.specs));
  EXPECT_EQ(decoded.body, bundle.body);
}

TEST_F(BundleFileTest, StreamBundleFileReportsABrokenStream) {
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), MakeSmallBundle()));
  EXPECT_THAT(StreamBundleFile(path, "", [](const v1::TensorChunk&) { return false; }),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("header")));
}

TEST_F(BundleFileTest, MissingFileIsNotFound) {
  const std::string path = dir_.Join("absent");
  EXPECT_THAT(BundleFileReader::Open(path), StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST_F(BundleFileTest, TruncatedBodyIsDataLossNamingThePath) {
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), MakeSmallBundle()));
  std::string raw = ReadRaw(path);
  const std::string truncated = WriteRaw("truncated", raw.substr(0, raw.size() - 3));
  EXPECT_THAT(
      BundleFileReader::Open(truncated),
      StatusIs(absl::StatusCode::kDataLoss,
               ::testing::AllOf(HasSubstr(truncated), HasSubstr("517 body bytes, expected 520"))));
  EXPECT_THAT(ReadBundleFile(truncated),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(truncated)));
}

TEST_F(BundleFileTest, FileWithExtraBytesIsDataLoss) {
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), MakeSmallBundle()));
  const std::string longer = WriteRaw("longer", ReadRaw(path) + "xy");
  EXPECT_THAT(BundleFileReader::Open(longer),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(longer)));
}

TEST_F(BundleFileTest, TruncatedHeaderIsDataLossNamingThePath) {
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), MakeSmallBundle()));
  const std::string raw = ReadRaw(path);
  const std::string in_length = WriteRaw("in-length", raw.substr(0, 10));
  EXPECT_THAT(BundleFileReader::Open(in_length),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr(in_length), HasSubstr("header length"))));
  const std::string in_header = WriteRaw("in-header", raw.substr(0, 14));
  EXPECT_THAT(
      BundleFileReader::Open(in_header),
      StatusIs(absl::StatusCode::kDataLoss,
               ::testing::AllOf(HasSubstr(in_header), HasSubstr("truncated in its header"))));
  const std::string empty = WriteRaw("empty", "");
  EXPECT_THAT(BundleFileReader::Open(empty),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(empty)));
}

TEST_F(BundleFileTest, BadMagicIsDataLossNamingThePath) {
  ASSERT_OK_AND_ASSIGN(std::string path, WriteBundleFile(dir_.path(), MakeSmallBundle()));
  std::string raw = ReadRaw(path);
  raw[7] = '2';
  const std::string bad = WriteRaw("bad-magic", raw);
  EXPECT_THAT(BundleFileReader::Open(bad),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr(bad), HasSubstr("bad magic"))));
}

TEST_F(BundleFileTest, GarbageHeaderIsDataLossNamingThePath) {
  // Four bytes that are not a protobuf message: a truncated varint tag.
  const std::string garbage =
      WriteRaw("garbage", std::string("FEDMIBN1\x04\x00\x00\x00\xff\xff\xff\xff", 16));
  EXPECT_THAT(BundleFileReader::Open(garbage),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr(garbage), HasSubstr("unreadable header"))));

  // A header that parses but contradicts itself.
  v1::BundleHeader header = HeaderFromSpecs(MakeSmallBundle().specs, "");
  header.set_total_bytes(1);
  const std::string bytes = header.SerializeAsString();
  std::string raw = "FEDMIBN1";
  raw.push_back(static_cast<char>(bytes.size()));
  raw.append(3, '\0');
  raw += bytes + "x";
  const std::string inconsistent = WriteRaw("inconsistent", raw);
  EXPECT_THAT(BundleFileReader::Open(inconsistent),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr(inconsistent), HasSubstr("header says 1"))));

  // A header length far beyond any model.
  const std::string huge = WriteRaw("huge", std::string("FEDMIBN1\xff\xff\xff\x7f", 12));
  EXPECT_THAT(BundleFileReader::Open(huge), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(huge)));
}

TEST_F(BundleFileTest, WriterRefusesTooManyAndTooFewBytes) {
  const TensorBundle bundle = MakeSmallBundle();
  {
    ASSERT_OK_AND_ASSIGN(auto writer, BundleFileWriter::Create(dir_.path(), bundle.specs));
    EXPECT_THAT(writer->Write(bundle.body.data(), bundle.body.size() - 1), IsOk());
    std::string sha256;
    EXPECT_THAT(writer->Commit(&sha256),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("519 bytes")));
    EXPECT_THAT(writer->Write("ab", 2),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than the 520")));
  }
  // An uncommitted writer leaves nothing behind.
  EXPECT_EQ(FileCount(), 0u);
}

TEST_F(BundleFileTest, CommittedWriterRefusesMoreWork) {
  const TensorBundle bundle = MakeSmallBundle();
  ASSERT_OK_AND_ASSIGN(auto writer, BundleFileWriter::Create(dir_.path(), bundle.specs));
  ASSERT_THAT(writer->Write(bundle.body.data(), bundle.body.size()), IsOk());
  ASSERT_THAT(writer->Commit(nullptr), IsOk());
  EXPECT_THAT(writer->Write("a", 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already committed")));
  EXPECT_THAT(writer->Commit(nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already committed")));
  writer.reset();
  EXPECT_EQ(FileCount(), 1u);  // the committed file survives its writer
}

TEST_F(BundleFileTest, CreateInAMissingDirectoryFails) {
  EXPECT_THAT(BundleFileWriter::Create(dir_.Join("missing"), MakeSmallBundle().specs),
              StatusIs(absl::StatusCode::kInternal, HasSubstr(dir_.Join("missing"))));
}

TEST_F(BundleFileTest, AFullDiskFailsTheWriteAndLeavesNoFile) {
  const TensorBundle bundle = MakeSmallBundle();
  FaultInjectionEnv env;
  absl::Status status;
  {
    ASSERT_OK_AND_ASSIGN(auto writer, BundleFileWriter::Create(dir_.path(), bundle.specs, env));
    env.FailWritesAfter(0);
    status = writer->Write(bundle.body.data(), bundle.body.size());
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInternal, HasSubstr("No space left")));
  EXPECT_EQ(FileCount(), 0u);
}

}  // namespace
}  // namespace fedmi
