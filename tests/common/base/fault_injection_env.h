// FaultInjectionEnv: an Env for tests that passes every call to a real Env
// (by default Env::Default()) until the test asks for a fault: the disk
// fills after N more bytes, commits (the sync-and-rename that publishes an
// AtomicFile) fail, or renames fail. A failed commit leaves the final path
// as it was, as a crash before the rename would. After LevelDB's
// FaultInjectionTestEnv. Thread-safe.
#ifndef FEDMI_TESTS_COMMON_BASE_FAULT_INJECTION_ENV_H_
#define FEDMI_TESTS_COMMON_BASE_FAULT_INJECTION_ENV_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/base/env.h"

namespace fedmi {

class FaultInjectionEnv : public Env {
 public:
  explicit FaultInjectionEnv(Env* base = Env::Default()) : base_(base) {}

  // Appends fail with ResourceExhausted ("No space left on device") once
  // `bytes` more bytes have been written, summed over all files.
  void FailWritesAfter(uint64_t bytes);
  // Every AtomicFile::Commit fails with `status` before publishing.
  void FailCommits(absl::Status status);
  // Only commits that publish `final_path` fail with `status`: a write that
  // fails after the others in a multi-file update succeeded.
  void FailCommitsTo(std::string final_path, absl::Status status);
  // Every RenameFile fails with `status`.
  void FailRenames(absl::Status status);
  // Back to a healthy disk.
  void Heal();

  int64_t commits() const;  // successful commits
  // How the last successful commit to `path` was made durable; nullopt when
  // nothing was committed there.
  std::optional<Durability> CommittedDurability(const std::string& path) const;
  int64_t failed_operations() const;

  // Env:
  absl::StatusOr<std::unique_ptr<AtomicFile>> NewAtomicFile(const std::string& dir_hint,
                                                            uint32_t mode, Publish publish,
                                                            Durability durability) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    return base_->NewSequentialFile(path);
  }
  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    return base_->ReadFile(path);
  }
  absl::Status RenameFile(const std::string& from, const std::string& to) override;
  absl::Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return base_->FileSize(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  absl::Status CreateDirs(const std::string& dir, uint32_t mode) override {
    return base_->CreateDirs(dir, mode);
  }
  absl::Status CreateDir(const std::string& dir, uint32_t mode) override {
    return base_->CreateDir(dir, mode);
  }
  absl::Status RemoveTree(const std::string& path) override { return base_->RemoveTree(path); }

 private:
  class FaultyFile;
  // Takes `n` bytes from the write budget; false when the disk is "full".
  bool ConsumeWriteBudget(uint64_t n);
  absl::Status CommitFault(const std::string& final_path);
  void CountCommit(const std::string& final_path, Durability durability);

  Env* const base_;
  mutable absl::Mutex mu_;
  std::optional<uint64_t> write_budget_ ABSL_GUARDED_BY(mu_);
  absl::Status commit_fault_ ABSL_GUARDED_BY(mu_);
  std::string commit_fault_path_ ABSL_GUARDED_BY(mu_);  // empty: every path
  absl::Status rename_fault_ ABSL_GUARDED_BY(mu_);
  int64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_operations_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Durability> committed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedmi

#endif  // FEDMI_TESTS_COMMON_BASE_FAULT_INJECTION_ENV_H_
