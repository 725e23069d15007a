// Decoding and preprocessing DICOM files the way a site loads them:
// ReadDicomImage of a 2048x2048 12-bit MONOCHROME2 radiograph-like image
// (smooth anatomy-like gradients plus noise, window center/width set) to
// 224x224x1, single thread, per transfer syntax:
//   BM_ReadDicom/0  explicit VR little endian (uncompressed, 8 MiB)
//   BM_ReadDicom/1  JPEG-LS lossless
//   BM_ReadDicom/2  RLE lossless
//   BM_ReadDicom/3  JPEG lossless (process 14 SV1)
// and, for scale, BM_ReadFileBytes: reading the uncompressed file's bytes
// (page cache) into memory. items_per_second is images per second.
// Run: build/bin/dicom_benchmark [--benchmark_filter=...]
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/data/dicom_image.h"
#include "common/data/dicom_writer.h"

namespace fedmi {
namespace {

constexpr int64_t kSide = 2048;
constexpr DicomTransferSyntax kSyntaxes[] = {
    DicomTransferSyntax::kExplicitVrLittleEndian, DicomTransferSyntax::kJpegLsLossless,
    DicomTransferSyntax::kRle, DicomTransferSyntax::kJpegLossless};

const std::vector<std::string>& Files() {
  static const std::vector<std::string>* files = [] {
    std::string dir =
        (std::filesystem::temp_directory_path() / "fedmi-dicom-bench-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) abort();
    DicomPixels pixels;
    pixels.rows = pixels.columns = kSide;
    pixels.values.resize(kSide * kSide);
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0.0, 40.0);
    for (int64_t y = 0; y < kSide; ++y) {
      for (int64_t x = 0; x < kSide; ++x) {
        const double u = static_cast<double>(x) / kSide - 0.5,
                     v = static_cast<double>(y) / kSide - 0.5;
        const double body =
            2500 * std::exp(-(u * u + v * v) * 6) + 600 * std::sin(20 * u) * std::cos(9 * v);
        pixels.values[y * kSide + x] =
            static_cast<int32_t>(std::clamp(body + 800 + noise(rng), 0.0, 4095.0));
      }
    }
    static std::string* made_dir = new std::string(dir);
    std::atexit([] { std::filesystem::remove_all(*made_dir); });
    auto* made = new std::vector<std::string>;
    DicomWriteOptions options;
    options.bits_stored = 12;
    options.modality = "CR";
    options.window_center = 2000;
    options.window_width = 3000;
    for (DicomTransferSyntax syntax : kSyntaxes) {
      options.transfer_syntax = syntax;
      made->push_back(dir + "/" + std::to_string(made->size()) + ".dcm");
      if (!WriteDicomFile(made->back(), pixels, options).ok()) abort();
    }
    return made;
  }();
  return *files;
}

void BM_ReadDicom(benchmark::State& state) {
  const std::string& path = Files()[state.range(0)];
  DicomReadOptions options;  // 224x224x1.
  for (auto _ : state) {
    absl::StatusOr<PreprocessedDicom> image = ReadDicomImage(path, options);
    if (!image.ok()) {
      state.SkipWithError(std::string(image.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(image->pixels.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["file_MiB"] = static_cast<double>(std::filesystem::file_size(path)) / (1 << 20);
}
BENCHMARK(BM_ReadDicom)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);

void BM_ReadFileBytes(benchmark::State& state) {
  const std::string& path = Files()[0];
  std::vector<char> bytes(std::filesystem::file_size(path));
  for (auto _ : state) {
    std::ifstream in(path, std::ios::binary);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
}
BENCHMARK(BM_ReadFileBytes)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fedmi
