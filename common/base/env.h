// Env: every file-system side effect of fedmi goes through this interface
// (after LevelDB's Env), so that a full disk, a failed rename or a crash
// between two writes is an ordinary unit test (tests/common/base/
// fault_injection_env.h) rather than a process test.
//
// Env::Default() is the POSIX implementation. It is thread-safe; an Env
// outlives every object it hands out. Failures come back as Status values
// that name the path and the errno text; nothing throws.
#ifndef FEDMI_COMMON_BASE_ENV_H_
#define FEDMI_COMMON_BASE_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedmi {

// A file being written under a temporary name next to its final path. The
// final name appears only when Commit() succeeds, and then the data and the
// rename are both durable (file and directory fsynced). Destroying an
// uncommitted file removes the temporary. With Durability::kScratch Commit
// only renames (nothing is fsynced). Not thread-safe.
class AtomicFile {
 public:
  virtual ~AtomicFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Flushes and fsyncs the data, renames the temporary to `final_path`
  // (replacing a file there unless the Env was asked for exclusive creation)
  // and fsyncs the directory. After a failure nothing is at `final_path`
  // that was not there before.
  virtual absl::Status Commit(const std::string& final_path) = 0;
  // The path being written, for messages.
  virtual const std::string& temp_path() const = 0;
};

// How NewAtomicFile publishes on Commit.
enum class Publish {
  kReplace,    // rename over an existing file
  kExclusive,  // fail with AlreadyExists if the final path exists
};

// Whether Commit makes the file durable.
enum class Durability {
  kSynced,   // file and directory fsynced: survives a power cut
  kScratch,  // no fsync: a spool file that is deleted within seconds and
             // removed at start-up, where an fsync per upload would cost a
             // disk write of every update for nothing
};

// A file read front to back.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `scratch`; returns how many, 0 at the end.
  virtual absl::StatusOr<size_t> Read(size_t n, char* scratch) = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never deleted.
  static Env* Default();

  // Starts a file that Commit() publishes atomically. `dir_hint` is the
  // directory of the final path: the temporary lives there, so that the
  // rename never crosses file systems. `mode` applies to the new file.
  virtual absl::StatusOr<std::unique_ptr<AtomicFile>> NewAtomicFile(
      const std::string& dir_hint, uint32_t mode = 0644, Publish publish = Publish::kReplace,
      Durability durability = Durability::kSynced) = 0;
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;

  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // Atomic rename, then the target's directory is fsynced.
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;
  // NotFound when there is no such file.
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, without "." and "..", sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates `dir` and its missing parents with `mode` (0700 for folders
  // that hold updates or keys); OK when it exists, whatever its mode.
  virtual absl::Status CreateDirs(const std::string& dir, uint32_t mode = 0755) = 0;
  // Creates the one directory `dir` with exactly `mode` (0700 for folders
  // that will hold keys). AlreadyExists when something is there already, so
  // a caller can claim a fresh name.
  virtual absl::Status CreateDir(const std::string& dir, uint32_t mode) = 0;
  // Removes `path` and, for a directory, everything in it: the clean-up of a
  // folder that was never published. OK when nothing is there.
  virtual absl::Status RemoveTree(const std::string& path) = 0;
};

// The directory part of `path` ("." when it has none).
std::string DirName(const std::string& path);

// The whole file at `path`, read through `env`. NotFound naming the path if
// it does not exist, PermissionDenied if it cannot be read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, Env& env = *Env::Default());

// Writes `contents` to `path` through an AtomicFile: all of it or nothing.
absl::Status WriteFileAtomically(Env& env, const std::string& path, absl::string_view contents,
                                 uint32_t mode = 0644, Publish publish = Publish::kReplace);

}  // namespace fedmi

#endif  // FEDMI_COMMON_BASE_ENV_H_
