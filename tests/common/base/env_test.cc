#include "common/base/env.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/base/fault_injection_env.h"

namespace fedmi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fedmi-env-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string dir_;
  Env& env_ = *Env::Default();
};

TEST_F(EnvTest, CommitPublishesTheWholeFileAndNothingElse) {
  const std::string path = dir_ + "/model.bin";
  auto file = env_.NewAtomicFile(dir_);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  EXPECT_FALSE(env_.FileExists(path));
  ASSERT_TRUE((*file)->Append("world").ok());
  ASSERT_TRUE((*file)->Commit(path).ok());
  EXPECT_EQ(*env_.ReadFile(path), "hello world");
  EXPECT_THAT(*env_.ListDir(dir_), ElementsAre("model.bin"));
}

TEST_F(EnvTest, AnAbandonedFileLeavesNothingBehind) {
  {
    auto file = env_.NewAtomicFile(dir_);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("partial").ok());
  }
  EXPECT_TRUE(env_.ListDir(dir_)->empty());
}

TEST_F(EnvTest, ReplaceOverwritesAndExclusiveRefusesAnExistingFile) {
  const std::string path = dir_ + "/index.json";
  ASSERT_TRUE(WriteFileAtomically(env_, path, "v1").ok());
  ASSERT_TRUE(WriteFileAtomically(env_, path, "v2").ok());
  EXPECT_EQ(*env_.ReadFile(path), "v2");
  absl::Status exclusive = WriteFileAtomically(env_, path, "v3", 0644, Publish::kExclusive);
  EXPECT_EQ(exclusive.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(exclusive.message(), HasSubstr(path));
  EXPECT_EQ(*env_.ReadFile(path), "v2");
  EXPECT_THAT(*env_.ListDir(dir_), ElementsAre("index.json"));
}

TEST_F(EnvTest, ModeIsAppliedWhateverTheUmask) {
  const std::string path = dir_ + "/key.pem";
  ASSERT_TRUE(WriteFileAtomically(env_, path, "secret", 0600).ok());
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(EnvTest, ErrorsNameThePath) {
  const std::string missing = dir_ + "/nope/file";
  absl::StatusOr<std::string> read = env_.ReadFile(missing);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr(missing));
  EXPECT_EQ(env_.RemoveFile(missing).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(env_.NewAtomicFile(dir_ + "/nope").status().message(), HasSubstr(dir_ + "/nope"));
}

TEST_F(EnvTest, CreateDirsMakesParentsAndListDirSorts) {
  ASSERT_TRUE(env_.CreateDirs(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(env_.CreateDirs(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(WriteFileAtomically(env_, dir_ + "/a/z", "").ok());
  EXPECT_THAT(*env_.ListDir(dir_ + "/a"), ElementsAre("b", "z"));
  EXPECT_EQ(DirName(dir_ + "/a/z"), dir_ + "/a");
  EXPECT_EQ(DirName("file"), ".");
  EXPECT_EQ(DirName("/file"), "/");
}

TEST_F(EnvTest, CreateDirAppliesItsModeAndClaimsAFreshNameOnce) {
  const std::string private_dir = dir_ + "/kits";
  ASSERT_TRUE(env_.CreateDir(private_dir, 0700).ok());
  struct stat info;
  ASSERT_EQ(stat(private_dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  const absl::Status again = env_.CreateDir(private_dir, 0700);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr(private_dir));
}

TEST_F(EnvTest, RemoveTreeRemovesAFolderWithItsContentsAndAcceptsNothing) {
  ASSERT_TRUE(env_.CreateDirs(dir_ + "/kit/state").ok());
  ASSERT_TRUE(WriteFileAtomically(env_, dir_ + "/kit/key.pem", "secret").ok());
  ASSERT_TRUE(env_.RemoveTree(dir_ + "/kit").ok());
  EXPECT_FALSE(env_.FileExists(dir_ + "/kit"));
  EXPECT_TRUE(env_.RemoveTree(dir_ + "/kit").ok());
}

TEST(ReadFileToStringTest, MissingFileIsNotFoundNamingThePath) {
  const absl::StatusOr<std::string> read = ReadFileToString("/nonexistent/fedmi/ca.crt");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr("/nonexistent/fedmi/ca.crt"));
}

TEST_F(EnvTest, SequentialFileReadsToTheEnd) {
  const std::string path = dir_ + "/data";
  ASSERT_TRUE(WriteFileAtomically(env_, path, "abcdef").ok());
  auto file = env_.NewSequentialFile(path);
  ASSERT_TRUE(file.ok());
  char buffer[4];
  EXPECT_EQ(*(*file)->Read(4, buffer), 4u);
  EXPECT_EQ(std::string(buffer, 4), "abcd");
  EXPECT_EQ(*(*file)->Read(4, buffer), 2u);
  EXPECT_EQ(*(*file)->Read(4, buffer), 0u);
}

TEST_F(EnvTest, AFullDiskFailsTheWriteAndKeepsTheOldFile) {
  FaultInjectionEnv faulty;
  const std::string path = dir_ + "/index.json";
  ASSERT_TRUE(WriteFileAtomically(faulty, path, "old contents").ok());
  faulty.FailWritesAfter(4);
  absl::Status status = WriteFileAtomically(faulty, path, "new contents");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("No space left"));
  EXPECT_EQ(*faulty.ReadFile(path), "old contents");
  EXPECT_THAT(*faulty.ListDir(dir_), ElementsAre("index.json"));
  faulty.Heal();
  ASSERT_TRUE(WriteFileAtomically(faulty, path, "new contents").ok());
  EXPECT_EQ(*faulty.ReadFile(path), "new contents");
  EXPECT_EQ(faulty.commits(), 2);
}

TEST_F(EnvTest, AFailedCommitPublishesNothing) {
  FaultInjectionEnv faulty;
  faulty.FailCommits(absl::InternalError("rename failed"));
  const std::string path = dir_ + "/model";
  absl::Status status = WriteFileAtomically(faulty, path, "bytes");
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_TRUE(faulty.ListDir(dir_)->empty());
  EXPECT_EQ(faulty.failed_operations(), 1);
}

}  // namespace
}  // namespace fedmi
