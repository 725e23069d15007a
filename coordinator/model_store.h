// Content-addressed model files: `<dir>/<sha256hex>`, each a bundle file
// (common/tensor_codec.h). A file is complete and fsynced before its name
// appears, so a crash leaves either nothing or a whole file; the rounds that
// refer to it commit only afterwards.
//
// Thread-safe: files are immutable once written.
#ifndef FEDMI_COORDINATOR_MODEL_STORE_H_
#define FEDMI_COORDINATOR_MODEL_STORE_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/tensor_codec.h"

namespace fedmi {

class ModelStore {
 public:
  // Creates `dir` when missing.
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // Path of the model with this SHA-256 (hex); NotFound when absent,
  // InvalidArgument unless the argument is 64 lower-case hex digits (so no
  // argument can name a path outside `dir`).
  absl::StatusOr<std::string> PathFor(const std::string& sha256_hex) const;
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
  explicit ModelStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_MODEL_STORE_H_
