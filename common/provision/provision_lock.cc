#include "common/provision/provision_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/provision/project_layout.h"

namespace fedmi {
namespace {

absl::Status LockError(absl::string_view what, const std::string& path, int error) {
  std::string message = absl::StrCat("cannot ", what, " '", path, "': ", std::strerror(error));
  if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
  if (error == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProvisionLock>> ProvisionLock::Acquire(const std::string& dir) {
  const std::string path = project_layout::LockPath(dir);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return LockError("open lock file", path, errno);
  while (flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int error = errno;
    close(fd);
    return LockError("lock", path, error);
  }
  return std::unique_ptr<ProvisionLock>(new ProvisionLock(fd));
}

ProvisionLock::~ProvisionLock() { close(fd_); }

}  // namespace fedmi
