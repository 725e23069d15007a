// Runs the Storage conformance suite against the in-memory fake.
#include "tests/coordinator/storage_conformance.h"

namespace fedmi {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, StorageConformanceTest,
                         ::testing::Values(StorageFactory{"Memory",
                                                          [] { return NewMemoryStorage(); }}),
                         StorageFactoryName);

}  // namespace
}  // namespace fedmi
