#include "common/base/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

absl::Status ErrnoStatus(absl::string_view what, const std::string& path, int error) {
  std::string message = absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", dir, errno);
  const int result = fsync(fd);
  const int error = errno;
  close(fd);
  // Some file systems (tmpfs) refuse fsync on directories; the rename is
  // then as durable as that file system allows.
  if (result != 0 && error != EINVAL) return ErrnoStatus("sync directory", dir, error);
  return absl::OkStatus();
}

std::string UniqueSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 random{std::random_device{}()};
  return absl::StrCat(getpid(), "-", counter.fetch_add(1), "-", random() % 1000000);
}

class PosixAtomicFile final : public AtomicFile {
 public:
  PosixAtomicFile(std::string dir, std::string temp_path, int fd, Publish publish,
                  Durability durability)
      : dir_(std::move(dir)),
        temp_path_(std::move(temp_path)),
        fd_(fd),
        publish_(publish),
        synced_(durability == Durability::kSynced) {}

  ~PosixAtomicFile() override {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(temp_path_.c_str());
  }

  absl::Status Append(absl::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(temp_path_, " is closed"));
    while (!data.empty()) {
      const ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("write", temp_path_, errno);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Commit(const std::string& final_path) override {
    if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(temp_path_, " is closed"));
    if (synced_ && fsync(fd_) != 0) return ErrnoStatus("sync", temp_path_, errno);
    const int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return ErrnoStatus("close", temp_path_, errno);
    if (publish_ == Publish::kExclusive) {
      // link() fails if the target exists: a file that appeared meanwhile is
      // never replaced.
      if (link(temp_path_.c_str(), final_path.c_str()) != 0) {
        return ErrnoStatus("create", final_path, errno);
      }
      unlink(temp_path_.c_str());
    } else if (rename(temp_path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoStatus("rename into", final_path, errno);
    }
    committed_ = true;
    return synced_ ? SyncDir(DirName(final_path)) : absl::OkStatus();
  }

  const std::string& temp_path() const override { return temp_path_; }

 private:
  const std::string dir_;
  const std::string temp_path_;
  int fd_;
  const Publish publish_;
  const bool synced_;
  bool committed_ = false;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { close(fd_); }

  absl::StatusOr<size_t> Read(size_t n, char* scratch) override {
    while (true) {
      const ssize_t got = read(fd_, scratch, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ErrnoStatus("read", path_, errno);
      return static_cast<size_t>(got);
    }
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<AtomicFile>> NewAtomicFile(const std::string& dir_hint,
                                                            uint32_t mode, Publish publish,
                                                            Durability durability) override {
    const std::string dir = dir_hint.empty() ? "." : dir_hint;
    const std::string temp = absl::StrCat(dir, "/.tmp-", UniqueSuffix());
    const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return ErrnoStatus("create", temp, errno);
    // The umask must not widen or narrow what the caller asked for (keys: 0600).
    fchmod(fd, mode);
    return std::unique_ptr<AtomicFile>(new PosixAtomicFile(dir, temp, fd, publish, durability));
  }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(path, fd));
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    std::string contents;
    char buffer[1 << 16];
    while (true) {
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        close(fd);
        return ErrnoStatus("read", path, error);
      }
      if (n == 0) break;
      contents.append(buffer, static_cast<size_t>(n));
    }
    close(fd);
    return contents;
  }

  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename into", to, errno);
    return SyncDir(DirName(to));
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return ErrnoStatus("remove", path, errno);
    return absl::OkStatus();
  }

  bool FileExists(const std::string& path) override { return access(path.c_str(), F_OK) == 0; }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat info;
    if (stat(path.c_str(), &info) != 0) return ErrnoStatus("stat", path, errno);
    return static_cast<uint64_t>(info.st_size);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* handle = opendir(dir.c_str());
    if (handle == nullptr) return ErrnoStatus("list", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* entry = readdir(handle)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(handle);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status CreateDirs(const std::string& dir, uint32_t mode) override {
    if (dir.empty()) return absl::OkStatus();
    for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
      const std::string prefix = dir.substr(0, slash);
      if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
        return ErrnoStatus("create directory", prefix, errno);
      }
      if (slash == std::string::npos) break;
    }
    return absl::OkStatus();
  }

  absl::Status CreateDir(const std::string& dir, uint32_t mode) override {
    if (mkdir(dir.c_str(), mode) != 0) return ErrnoStatus("create directory", dir, errno);
    // As for files: the umask must not change what the caller asked for.
    chmod(dir.c_str(), mode);
    return absl::OkStatus();
  }

  absl::Status RemoveTree(const std::string& path) override {
    std::error_code error;
    std::filesystem::remove_all(path, error);
    if (error) return ErrnoStatus("remove", path, error.value());
    return absl::OkStatus();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv();
  return env;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path, Env& env) {
  return env.ReadFile(path);
}

absl::Status WriteFileAtomically(Env& env, const std::string& path, absl::string_view contents,
                                 uint32_t mode, Publish publish) {
  auto file = env.NewAtomicFile(DirName(path), mode, publish);
  if (!file.ok()) return file.status();
  absl::Status status = (*file)->Append(contents);
  if (!status.ok()) return status;
  return (*file)->Commit(path);
}

}  // namespace fedmi
