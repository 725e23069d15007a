// Helpers for the tests of the aggregators that spool updates (median,
// trimmed mean, Krum): updates fed the way the RoundManager feeds them, and
// the aggregate read back from a real model store.
#ifndef FEDMI_TESTS_COORDINATOR_SPOOLED_AGGREGATOR_TEST_UTIL_H_
#define FEDMI_TESTS_COORDINATOR_SPOOLED_AGGREGATOR_TEST_UTIL_H_

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/aggregator.h"
#include "coordinator/model_store.h"
#include "tests/test_util.h"

namespace fedmi {

inline TensorSpec Float32(const std::string& name, std::vector<int64_t> shape) {
  return TensorSpec{name, DType::kFloat32, std::move(shape)};
}

// The names in directory `dir`.
inline std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// Writes one site's update as a bundle file, feeds it to `aggregator` and then
// deletes the file, as the RoundManager does.
inline absl::Status AcceptUpdate(Aggregator& aggregator, const std::string& dir,
                                 const std::string& site, double weight,
                                 const std::vector<TensorSpec>& specs,
                                 const std::vector<float>& values) {
  absl::StatusOr<std::string> path = WriteBundleFile(dir, FloatBundle(specs, values));
  if (!path.ok()) return path.status();
  absl::Status status;
  {
    absl::StatusOr<std::unique_ptr<BundleFileReader>> reader = BundleFileReader::Open(*path);
    status = reader.ok() ? aggregator.Accept(site, weight, **reader) : reader.status();
  }
  std::remove(path->c_str());
  return status;
}

// Scratch directories for updates, models and spools, and a model store.
class SpoolingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(models_.path())); }

  // Spool options under this test's spool directory.
  SpoolOptions Spool(size_t parameters_per_chunk = size_t{64} * 1024) const {
    SpoolOptions options;
    options.spool_parent = spool_.path();
    options.parameters_per_chunk = parameters_per_chunk;
    return options;
  }

  absl::Status AcceptInto(Aggregator& aggregator, const std::string& site, double weight,
                          const std::vector<TensorSpec>& specs, const std::vector<float>& values) {
    return AcceptUpdate(aggregator, updates_.path(), site, weight, specs, values);
  }

  // Finishes the round and reads the new global model back from the store.
  absl::StatusOr<TensorBundle> FinishAndRead(Aggregator& aggregator) {
    absl::StatusOr<std::string> sha = aggregator.Finish(*store_);
    if (!sha.ok()) return sha.status();
    absl::StatusOr<std::string> path = store_->PathFor(*sha);
    if (!path.ok()) return path.status();
    return ReadBundleFile(*path);
  }

  ScratchDir updates_;
  ScratchDir models_;
  ScratchDir spool_;
  std::unique_ptr<ModelStore> store_;
};

}  // namespace fedmi

#endif  // FEDMI_TESTS_COORDINATOR_SPOOLED_AGGREGATOR_TEST_UTIL_H_
