// ProvisionLock: an exclusive lock on a project directory, so that
// concurrent `fedmi provision` processes on one directory are serialised.
// It is an flock(2) on <dir>/.provision.lock, held for as long as the object
// lives and released by the kernel if the process dies. Not part of Env: it
// changes no file content, and a fault test has nothing to inject in it.
// Not thread-safe; one per process and directory.
#ifndef FEDMI_COMMON_PROVISION_PROVISION_LOCK_H_
#define FEDMI_COMMON_PROVISION_PROVISION_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace fedmi {

class ProvisionLock {
 public:
  // Blocks until the lock is held. Fails naming the lock file if it cannot
  // be opened or locked.
  static absl::StatusOr<std::unique_ptr<ProvisionLock>> Acquire(const std::string& dir);
  ~ProvisionLock();
  ProvisionLock(const ProvisionLock&) = delete;
  ProvisionLock& operator=(const ProvisionLock&) = delete;

 private:
  explicit ProvisionLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_PROVISION_PROVISION_LOCK_H_
