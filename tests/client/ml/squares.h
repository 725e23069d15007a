// Grey noise images; class 1 (every odd row) also has a bright 6x6 square
// somewhere, which a CNN learns in a few epochs. Shared by the model tests.
#ifndef FEDMI_TESTS_CLIENT_ML_SQUARES_H_
#define FEDMI_TESTS_CLIENT_ML_SQUARES_H_

#include <cstdint>
#include <random>

#include "common/data/dataset.h"

namespace fedmi::ml {

inline ImageSet MakeSquares(int64_t n, int64_t side, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  std::uniform_int_distribution<int64_t> corner(0, side - 6);
  ImageSet set;
  set.height = side;
  set.width = side;
  set.channels = 1;
  set.pixels.resize(n * side * side);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* image = set.pixels.data() + i * side * side;
    for (int64_t p = 0; p < side * side; ++p) image[p] = static_cast<uint8_t>(noise(rng));
    const int64_t label = i % 2;
    if (label == 1) {
      const int64_t top = corner(rng), left = corner(rng);
      for (int64_t r = top; r < top + 6; ++r) {
        for (int64_t c = left; c < left + 6; ++c) image[r * side + c] = 230;
      }
    }
    set.labels.push_back(label);
  }
  return set;
}

}  // namespace fedmi::ml

#endif  // FEDMI_TESTS_CLIENT_ML_SQUARES_H_
