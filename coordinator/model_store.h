// Content-addressed model files: `<dir>/<sha256hex>`, each a bundle file
// (common/tensor_codec.h). A file is complete and fsynced before its name
// appears, so a crash leaves either nothing or a whole file; the rounds that
// refer to it commit only afterwards.
//
// Every file-system change goes through the Env given to Open (default:
// Env::Default()), so tests can fill the disk or fail a rename.
//
// Thread-safe: files are immutable once written. The Env outlives the store.
#ifndef FEDMI_COORDINATOR_MODEL_STORE_H_
#define FEDMI_COORDINATOR_MODEL_STORE_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/env.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {

class ModelStore {
 public:
  // Creates `dir` when missing.
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(const std::string& dir,
                                                          Env& env = *Env::Default());

  const std::string& dir() const { return dir_; }
  // Path of the model with this SHA-256 (hex); NotFound when absent,
  // InvalidArgument unless the argument is 64 lower-case hex digits (so no
  // argument can name a path outside `dir`).
  absl::StatusOr<std::string> PathFor(const std::string& sha256_hex) const;
  // Moves the complete bundle file at `path` (on the same file system, e.g.
  // a spooled upload) into the store as the model `sha256_hex`, durably.
  // Returns its path. InvalidArgument for a malformed id; the Env's error,
  // naming the paths, when the rename fails (`path` is then left as it was).
  // AlreadyExists, leaving both files, when the store holds this body with
  // other tensors.
  absl::StatusOr<std::string> Adopt(const std::string& path, const std::string& sha256_hex) const;
  // A writer whose Commit() places the file under its content address.
  absl::StatusOr<std::unique_ptr<BundleFileWriter>> NewWriter(
      const std::vector<TensorSpec>& specs) const;
  // Deletes model files not in `referenced`, and leftover temp files.
  // Returns how many files were removed. Files with other names are left
  // alone. Call it only while no writer is active (at start-up): it would
  // delete a writer's temp file, and a model committed but not yet referenced
  // by a round.
  absl::StatusOr<int> CollectGarbage(const std::set<std::string>& referenced) const;

 private:
  // `<dir>/<sha256_hex>`; InvalidArgument unless the id is a SHA-256.
  absl::StatusOr<std::string> ContentPath(const std::string& sha256_hex) const;

  ModelStore(std::string dir, Env& env) : dir_(std::move(dir)), env_(env) {}
  std::string dir_;
  Env& env_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_MODEL_STORE_H_
