// Prints the sample registry's exposition text, for `promtool check
// metrics` (tests/CMakeLists.txt adds that test where promtool is found).
#include <iostream>

#include "common/metrics/metric_registry.h"
#include "tests/common/metrics/sample_registry.h"

int main() {
  fedmi::metrics::MetricRegistry registry;
  if (absl::Status status = fedmi::metrics::testing::FillSampleRegistry(registry); !status.ok()) {
    std::cerr << status << "\n";
    return 1;
  }
  std::cout << registry.RenderText();
  return 0;
}
