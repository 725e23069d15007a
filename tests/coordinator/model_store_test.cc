#include "coordinator/model_store.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/crypto/sha256.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

TensorBundle MakeBundle(float first, float second) {
  TensorBundle bundle;
  bundle.specs.push_back({"fc.weight", DType::kFloat32, {2}});
  bundle.body.resize(8);
  std::memcpy(bundle.body.data(), &first, 4);
  std::memcpy(bundle.body.data() + 4, &second, 4);
  return bundle;
}

class ModelStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(dir_.Join("models"))); }

  // Writes `bundle` through NewWriter in two pieces and returns its hex name.
  std::string Put(const TensorBundle& bundle) {
    absl::StatusOr<std::unique_ptr<BundleFileWriter>> writer = store_->NewWriter(bundle.specs);
    EXPECT_THAT(writer, IsOk());
    if (!writer.ok()) return "";
    const size_t half = bundle.body.size() / 2;
    EXPECT_THAT((*writer)->Write(bundle.body.data(), half), IsOk());
    EXPECT_THAT((*writer)->Write(bundle.body.data() + half, bundle.body.size() - half), IsOk());
    std::string digest;
    EXPECT_THAT((*writer)->Commit(&digest), IsOk());
    return HexEncode(digest);
  }

  size_t FileCount() const {
    size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(store_->dir())) {
      (void)entry;
      ++count;
    }
    return count;
  }

  ScratchDir dir_;
  std::unique_ptr<ModelStore> store_;
};

TEST_F(ModelStoreTest, OpenCreatesTheDirectory) {
  EXPECT_TRUE(std::filesystem::is_directory(dir_.Join("models")));
  EXPECT_EQ(store_->dir(), dir_.Join("models"));
}

TEST_F(ModelStoreTest, OpenRefusesAPathThatIsAFile) {
  std::ofstream(dir_.Join("file")) << "x";
  EXPECT_THAT(ModelStore::Open(dir_.Join("file")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("file")));
}

TEST_F(ModelStoreTest, WriteCommitAndReadBack) {
  TensorBundle bundle = MakeBundle(1.5f, -2.0f);
  const std::string sha = Put(bundle);
  EXPECT_EQ(sha, HexEncode(Sha256::Digest(std::string(bundle.body.begin(), bundle.body.end()))));

  ASSERT_OK_AND_ASSIGN(std::string path, store_->PathFor(sha));
  EXPECT_EQ(path, store_->dir() + "/" + sha);
  ASSERT_OK_AND_ASSIGN(TensorBundle read, ReadBundleFile(path));
  EXPECT_EQ(read.specs, bundle.specs);
  EXPECT_EQ(read.body, bundle.body);
  EXPECT_EQ(FileCount(), 1u);  // no temp file left behind
}

TEST_F(ModelStoreTest, SameContentGetsTheSameName) {
  const std::string first = Put(MakeBundle(1, 2));
  const std::string again = Put(MakeBundle(1, 2));
  const std::string other = Put(MakeBundle(2, 1));
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  EXPECT_EQ(FileCount(), 2u);
}

// A model's name covers its body only. An upload (a site's initial model)
// with the body of a stored model or artifact and other tensor names or
// shapes replaced that file's header, so every run reading it broke; the
// stored file stays as it is.
TEST_F(ModelStoreTest, AdoptKeepsAStoredFileWhoseBodyMatchesButTensorsDiffer) {
  const TensorBundle stored = MakeBundle(1, 2);
  const std::string sha = Put(stored);
  TensorBundle renamed = stored;
  renamed.specs[0].name = "other.weight";
  std::string digest;
  ASSERT_THAT(Env::Default()->CreateDirs(dir_.Join("spool")), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string spooled, WriteBundleFile(dir_.Join("spool"), renamed, &digest));
  ASSERT_EQ(HexEncode(digest), sha);
  EXPECT_THAT(store_->Adopt(spooled, sha), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(std::string path, store_->PathFor(sha));
  ASSERT_OK_AND_ASSIGN(TensorBundle read, ReadBundleFile(path));
  EXPECT_EQ(read.specs, stored.specs);
  // The same file again is simply the same model.
  ASSERT_OK_AND_ASSIGN(spooled, WriteBundleFile(dir_.Join("spool"), stored, &digest));
  EXPECT_THAT(store_->Adopt(spooled, sha), IsOk());
}

TEST_F(ModelStoreTest, UncommittedWriterLeavesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<BundleFileWriter> writer,
                         store_->NewWriter(MakeBundle(1, 2).specs));
    ASSERT_THAT(writer->Write("abcd", 4), IsOk());
  }
  EXPECT_EQ(FileCount(), 0u);
}

TEST_F(ModelStoreTest, PathForRejectsAnythingButASha256) {
  for (const std::string& bad : std::vector<std::string>{
           "../x", "", "/etc/passwd", "..", std::string(63, 'a'), std::string(65, 'a'),
           std::string(64, 'g'), "../" + std::string(61, 'a'), std::string(64, 'A')}) {
    EXPECT_THAT(store_->PathFor(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a SHA-256")))
        << bad;
  }
}

TEST_F(ModelStoreTest, PathForUnknownHashIsNotFound) {
  const std::string unknown = HexEncode(Sha256::Digest("never written"));
  EXPECT_THAT(store_->PathFor(unknown), StatusIs(absl::StatusCode::kNotFound, HasSubstr(unknown)));
}

TEST_F(ModelStoreTest, CollectGarbageRemovesUnreferencedAndTempFiles) {
  const std::string kept = Put(MakeBundle(1, 2));
  const std::string dropped = Put(MakeBundle(3, 4));
  std::ofstream(store_->dir() + "/.tmp-123-456") << "half a model";
  std::ofstream(store_->dir() + "/README") << "operator notes";

  ASSERT_OK_AND_ASSIGN(int removed, store_->CollectGarbage({kept}));
  EXPECT_EQ(removed, 2);
  EXPECT_THAT(store_->PathFor(kept), IsOk());
  EXPECT_THAT(store_->PathFor(dropped), StatusIs(absl::StatusCode::kNotFound, HasSubstr(dropped)));
  EXPECT_FALSE(std::filesystem::exists(store_->dir() + "/.tmp-123-456"));
  EXPECT_TRUE(std::filesystem::exists(store_->dir() + "/README"));

  // A second pass finds nothing more.
  ASSERT_OK_AND_ASSIGN(int again, store_->CollectGarbage({kept}));
  EXPECT_EQ(again, 0);
}

TEST_F(ModelStoreTest, CollectGarbageWithNothingReferencedEmptiesTheStore) {
  Put(MakeBundle(1, 2));
  Put(MakeBundle(3, 4));
  ASSERT_OK_AND_ASSIGN(int removed, store_->CollectGarbage({}));
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(FileCount(), 0u);
}

}  // namespace
}  // namespace fedmi
