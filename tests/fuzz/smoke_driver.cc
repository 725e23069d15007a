// Stands in for libFuzzer's main() when the targets are built without clang:
// runs the target on its seeds and on deterministic mutations of them
// (bit flips, truncations, splices, random bytes). A crash, sanitizer report
// or hang fails the ctest run. `--write-seeds DIR` writes the seeds as a
// libFuzzer corpus instead.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "tests/fuzz/fuzz_target.h"

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(const std::string& seed, const std::string& other, std::mt19937_64& random) {
  std::string out = seed;
  switch (random() % 5) {
    case 0:  // flip bits
      for (int i = 0, n = 1 + random() % 8; i < n && !out.empty(); ++i) {
        out[random() % out.size()] ^= static_cast<char>(1 << (random() % 8));
      }
      break;
    case 1:  // truncate
      out.resize(out.empty() ? 0 : random() % out.size());
      break;
    case 2:  // splice with another seed
      out = out.substr(0, out.empty() ? 0 : random() % out.size()) +
            other.substr(other.empty() ? 0 : random() % other.size());
      break;
    case 3:  // overwrite a run with random bytes
      for (size_t i = out.empty() ? 0 : random() % out.size(), n = random() % 16;
           i < out.size() && n > 0; ++i, --n) {
        out[i] = static_cast<char>(random());
      }
      break;
    default:  // random bytes
      out.assign(random() % 256, '\0');
      for (char& c : out) c = static_cast<char>(random());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> seeds = fedmi::fuzz::Seeds();
  if (argc == 3 && std::strcmp(argv[1], "--write-seeds") == 0) {
    std::filesystem::create_directories(argv[2]);
    for (size_t i = 0; i < seeds.size(); ++i) {
      std::ofstream(std::string(argv[2]) + "/seed-" + std::to_string(i), std::ios::binary)
          << seeds[i];
    }
    return 0;
  }
  int iterations = 3000;
  if (argc == 2) iterations = std::atoi(argv[1]);
  for (const auto& seed : seeds) Run(seed);
  std::mt19937_64 random(20261128);
  for (int i = 0; i < iterations; ++i) {
    const std::string& seed = seeds[random() % seeds.size()];
    const std::string& other = seeds[random() % seeds.size()];
    Run(Mutate(seed, other, random));
  }
  std::printf("%zu seeds and %d mutations ran without a crash\n", seeds.size(), iterations);
  return 0;
}
