#include "coordinator/model_store.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "coordinator/storage_validation.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

// Env::NewAtomicFile (under BundleFileWriter) names its temp files
// "<dir>/.tmp-<pid>-<counter>-<random>".
constexpr char kTempPrefix[] = ".tmp-";

}  // namespace

absl::StatusOr<std::unique_ptr<ModelStore>> ModelStore::Open(const std::string& dir, Env& env) {
  if (dir.empty()) return absl::InvalidArgumentError("model store directory is empty");
  if (absl::Status created = env.CreateDirs(dir); !created.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create model store directory ", dir, ": ", created.message()));
  }
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("model store path ", dir, " is not a directory"));
  }
  return std::unique_ptr<ModelStore>(new ModelStore(dir, env));
}

absl::StatusOr<std::string> ModelStore::ContentPath(const std::string& sha256_hex) const {
  // Only a SHA-256 may become a path component: this rejects "../x", "/etc"
  // and the temp files' names.
  if (!storage_internal::IsSha256Hex(sha256_hex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model id '", sha256_hex, "' is not a SHA-256 (64 lower-case hex digits)"));
  }
  return absl::StrCat(dir_, "/", sha256_hex);
}

absl::StatusOr<std::string> ModelStore::PathFor(const std::string& sha256_hex) const {
  ASSIGN_OR_RETURN(std::string path, ContentPath(sha256_hex));
  std::error_code error;
  if (!fs::is_regular_file(path, error)) {
    return absl::NotFoundError(
        absl::StrCat("model ", sha256_hex, " is not in the model store ", dir_));
  }
  return path;
}

absl::StatusOr<std::string> ModelStore::Adopt(const std::string& path,
                                              const std::string& sha256_hex) const {
  ASSIGN_OR_RETURN(std::string target, ContentPath(sha256_hex));
  // The name covers the body only: a file with this body and other tensors
  // (names, shapes) must not replace the stored one, which runs and their
  // sites read as it was stored.
  std::error_code exists_error;
  if (fs::exists(target, exists_error)) {
    ASSIGN_OR_RETURN(auto stored, BundleFileReader::Open(target));
    ASSIGN_OR_RETURN(auto incoming, BundleFileReader::Open(path));
    if (stored->specs() != incoming->specs()) {
      return absl::AlreadyExistsError(
          absl::StrCat("the model store holds ", sha256_hex, " with other tensors than ", path));
    }
  }
  if (absl::Status renamed = env_.RenameFile(path, target); !renamed.ok()) {
    return absl::Status(renamed.code(),
                        absl::StrCat("cannot move ", path, " into the model store as ", target,
                                     ": ", renamed.message()));
  }
  return target;
}

absl::StatusOr<std::unique_ptr<BundleFileWriter>> ModelStore::NewWriter(
    const std::vector<TensorSpec>& specs) const {
  return BundleFileWriter::Create(dir_, specs, env_);
}

absl::StatusOr<int> ModelStore::CollectGarbage(const std::set<std::string>& referenced) const {
  std::error_code error;
  int removed = 0;
  for (fs::directory_iterator it(dir_, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    std::error_code type_error;
    if (!it->is_regular_file(type_error)) continue;
    const std::string name = it->path().filename().string();
    const bool unreferenced_model =
        storage_internal::IsSha256Hex(name) && referenced.count(name) == 0;
    const bool temp_leftover = absl::StartsWith(name, kTempPrefix);
    // Anything else (an operator's notes, a backup) is not ours to delete.
    if (!unreferenced_model && !temp_leftover) continue;
    std::error_code remove_error;
    if (!fs::remove(it->path(), remove_error) && remove_error) {
      return absl::InternalError(absl::StrCat("cannot remove ", it->path().string(),
                                              " from the model store: ", remove_error.message()));
    }
    ++removed;
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot list model store ", dir_, ": ", error.message()));
  }
  return removed;
}

}  // namespace fedmi
