#include "tests/common/base/fault_injection_env.h"

#include "absl/strings/str_cat.h"

namespace fedmi {

class FaultInjectionEnv::FaultyFile final : public AtomicFile {
 public:
  FaultyFile(FaultInjectionEnv* env, std::unique_ptr<AtomicFile> base, Durability durability)
      : env_(env), base_(std::move(base)), durability_(durability) {}

  absl::Status Append(absl::string_view data) override {
    if (!env_->ConsumeWriteBudget(data.size())) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot write ", base_->temp_path(), ": No space left on device"));
    }
    return base_->Append(data);
  }

  // A failed commit never reaches the base file, whose destructor then
  // removes the temporary: the final path is untouched.
  absl::Status Commit(const std::string& final_path) override {
    const absl::Status fault = env_->CommitFault(final_path);
    if (!fault.ok()) {
      return absl::Status(fault.code(),
                          absl::StrCat("cannot publish ", final_path, ": ", fault.message()));
    }
    absl::Status status = base_->Commit(final_path);
    if (status.ok()) env_->CountCommit(final_path, durability_);
    return status;
  }

  const std::string& temp_path() const override { return base_->temp_path(); }

 private:
  FaultInjectionEnv* const env_;
  std::unique_ptr<AtomicFile> base_;
  const Durability durability_;
};

void FaultInjectionEnv::FailWritesAfter(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  write_budget_ = bytes;
}

void FaultInjectionEnv::FailCommits(absl::Status status) {
  absl::MutexLock lock(&mu_);
  commit_fault_ = std::move(status);
  commit_fault_path_.clear();
}

void FaultInjectionEnv::FailCommitsTo(std::string final_path, absl::Status status) {
  absl::MutexLock lock(&mu_);
  commit_fault_ = std::move(status);
  commit_fault_path_ = std::move(final_path);
}

void FaultInjectionEnv::FailRenames(absl::Status status) {
  absl::MutexLock lock(&mu_);
  rename_fault_ = std::move(status);
}

void FaultInjectionEnv::Heal() {
  absl::MutexLock lock(&mu_);
  write_budget_.reset();
  commit_fault_ = absl::OkStatus();
  commit_fault_path_.clear();
  rename_fault_ = absl::OkStatus();
}

int64_t FaultInjectionEnv::commits() const {
  absl::MutexLock lock(&mu_);
  return commits_;
}

int64_t FaultInjectionEnv::failed_operations() const {
  absl::MutexLock lock(&mu_);
  return failed_operations_;
}

absl::StatusOr<std::unique_ptr<AtomicFile>> FaultInjectionEnv::NewAtomicFile(
    const std::string& dir_hint, uint32_t mode, Publish publish, Durability durability) {
  absl::StatusOr<std::unique_ptr<AtomicFile>> base =
      base_->NewAtomicFile(dir_hint, mode, publish, durability);
  if (!base.ok()) return base.status();
  return std::unique_ptr<AtomicFile>(new FaultyFile(this, std::move(*base), durability));
}

absl::Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  {
    absl::MutexLock lock(&mu_);
    if (!rename_fault_.ok()) {
      ++failed_operations_;
      return absl::Status(rename_fault_.code(),
                          absl::StrCat("cannot rename into ", to, ": ", rename_fault_.message()));
    }
  }
  return base_->RenameFile(from, to);
}

bool FaultInjectionEnv::ConsumeWriteBudget(uint64_t n) {
  absl::MutexLock lock(&mu_);
  if (!write_budget_.has_value()) return true;
  if (n > *write_budget_) {
    *write_budget_ = 0;
    ++failed_operations_;
    return false;
  }
  *write_budget_ -= n;
  return true;
}

absl::Status FaultInjectionEnv::CommitFault(const std::string& final_path) {
  absl::MutexLock lock(&mu_);
  if (commit_fault_.ok()) return absl::OkStatus();
  if (!commit_fault_path_.empty() && commit_fault_path_ != final_path) return absl::OkStatus();
  ++failed_operations_;
  return commit_fault_;
}

void FaultInjectionEnv::CountCommit(const std::string& final_path, Durability durability) {
  absl::MutexLock lock(&mu_);
  ++commits_;
  committed_[final_path] = durability;
}

std::optional<Durability> FaultInjectionEnv::CommittedDurability(const std::string& path) const {
  absl::MutexLock lock(&mu_);
  auto it = committed_.find(path);
  if (it == committed_.end()) return std::nullopt;
  return it->second;
}

}  // namespace fedmi
