// In-memory labelled image data, as read from a MedMNIST .npz or an image
// folder. Pixels are 8-bit, channel-last, rows in example order.
//
// Plain value types: not thread-safe to mutate concurrently; copying is
// explicit and costs the pixel buffer.
#ifndef FEDMI_COMMON_DATA_DATASET_H_
#define FEDMI_COMMON_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fedmi {

struct ImageSet {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 1;
  std::vector<uint8_t> pixels;  // size() == size() * height * width * channels
  std::vector<int64_t> labels;  // one class index per example

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t ImageBytes() const { return height * width * channels; }
};

// A site's local data: it trains on `train` and reports metrics on `val`.
struct SiteDataset {
  ImageSet train;
  ImageSet val;
  int64_t num_classes = 2;
};

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DATASET_H_
