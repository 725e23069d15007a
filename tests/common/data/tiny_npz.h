// 4x4 grey npz members and the geometry to read them at, for the tests of
// unlabelled data and simulated labels.
#ifndef FEDMI_TESTS_COMMON_DATA_TINY_NPZ_H_
#define FEDMI_TESTS_COMMON_DATA_TINY_NPZ_H_

#include <vector>

#include "common/data/image_data.h"
#include "common/data/npz.h"

namespace fedmi {

// `rows` 4x4 grey images, image i filled with `first + i`, as an npy array.
inline NpyArray Images(int rows, int first) {
  NpyArray array{"|u1", {rows, 4, 4}, {}};
  for (int i = 0; i < rows; ++i)
    array.data.insert(array.data.end(), 16, static_cast<char>(first + i));
  return array;
}

inline NpyArray Labels(const std::vector<int>& labels) {
  NpyArray array{"|u1", {static_cast<int64_t>(labels.size()), 1}, {}};
  for (int label : labels) array.data.push_back(static_cast<char>(label));
  return array;
}

inline SiteDataOptions At4x4() {
  SiteDataOptions options;
  options.height = options.width = 4;
  options.val_fraction = 0;
  return options;
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_COMMON_DATA_TINY_NPZ_H_
