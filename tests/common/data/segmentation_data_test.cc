#include "common/data/segmentation_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include "common/data/data_split.h"
#include "common/data/dicom_writer.h"
#include "common/data/image_data.h"
#include "common/data/image_geometry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

NpyArray U8(std::vector<int64_t> shape, const std::vector<uint8_t>& values) {
  NpyArray array{"|u1", std::move(shape), {}};
  array.data.assign(values.begin(), values.end());
  return array;
}

// `rows` 4x4 images where image i is all 10 * i and its mask has its first
// i pixels set (value 255, to check binarisation): each row names itself.
void AddIdentifiedRows(std::map<std::string, NpyArray>& arrays, const std::string& split,
                       int64_t rows, bool labels) {
  std::vector<uint8_t> images, masks;
  for (int64_t i = 0; i < rows; ++i) {
    for (int p = 0; p < 16; ++p) {
      images.push_back(static_cast<uint8_t>(10 * i));
      masks.push_back(p < i ? 255 : 0);
    }
  }
  arrays[split + "_images"] = U8({rows, 4, 4}, images);
  arrays[split + "_masks"] = U8({rows, 4, 4}, masks);
  if (labels) arrays[split + "_labels"] = U8({rows, 1}, std::vector<uint8_t>(rows, 7));
}

// Every row's mask is the one written with its image.
void ExpectAligned(const ImageSet& set) {
  ASSERT_TRUE(set.has_masks());
  ASSERT_EQ(static_cast<int64_t>(set.masks.size()), set.size() * set.MaskBytes());
  for (int64_t row = 0; row < set.size(); ++row) {
    const int64_t id = set.pixels[row * set.ImageBytes()] / 10;
    const uint8_t* mask = set.masks.data() + row * set.MaskBytes();
    EXPECT_EQ(std::count(mask, mask + set.MaskBytes(), 1), id) << "row " << row;
    EXPECT_EQ(std::count(mask, mask + set.MaskBytes(), 0), set.MaskBytes() - id) << "row " << row;
  }
}

void WritePng(const fs::path& path, int width, int height, const std::vector<uint8_t>& grey) {
  fs::create_directories(path.parent_path());
  ASSERT_NE(stbi_write_png(path.c_str(), width, height, 1, grey.data(), width), 0);
}

class SegmentationDataTest : public ::testing::Test {
 protected:
  SiteDataOptions Geometry(int64_t height, int64_t width) {
    SiteDataOptions options;
    options.height = height;
    options.width = width;
    options.val_fraction = 0;
    options.with_masks = true;
    return options;
  }
  ScratchDir dir_;
};

TEST_F(SegmentationDataTest, NpzMasksAreBinarisedAndGiveLabelsWhenThereAreNone) {
  std::map<std::string, NpyArray> arrays;
  AddIdentifiedRows(arrays, "train", 3, /*labels=*/false);
  ASSERT_OK_AND_ASSIGN(ImageSet set, ImageSetFromNpz(arrays, "p.npz", "train", true));
  ExpectAligned(set);
  EXPECT_THAT(set.labels, ElementsAre(0, 1, 1));
  // Labels the file has are kept; without with_masks the masks are ignored.
  AddIdentifiedRows(arrays, "train", 3, /*labels=*/true);
  ASSERT_OK_AND_ASSIGN(set, ImageSetFromNpz(arrays, "p.npz", "train", true));
  EXPECT_THAT(set.labels, ElementsAre(7, 7, 7));
  ASSERT_OK_AND_ASSIGN(set, ImageSetFromNpz(arrays, "p.npz", "train"));
  EXPECT_FALSE(set.has_masks());
}

TEST_F(SegmentationDataTest, NpzWithoutOrWithWrongMasksIsRefused) {
  std::map<std::string, NpyArray> arrays;
  AddIdentifiedRows(arrays, "train", 3, true);
  arrays.erase("train_masks");
  EXPECT_THAT(ImageSetFromNpz(arrays, "p.npz", "train", true),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no member 'train_masks'")));
  arrays["train_masks"] = U8({3, 4, 5}, std::vector<uint8_t>(60, 0));
  EXPECT_THAT(
      ImageSetFromNpz(arrays, "p.npz", "train", true),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("'train_masks' has shape (3, 4, 5) but its images are (3, 4, 4)")));
  arrays["train_masks"] = U8({3, 4, 4, 1}, std::vector<uint8_t>(48, 1));
  EXPECT_THAT(ImageSetFromNpz(arrays, "p.npz", "train", true), IsOk());
}

TEST_F(SegmentationDataTest, HoldOutKeepsEachMaskWithItsImage) {
  std::map<std::string, NpyArray> arrays;
  AddIdentifiedRows(arrays, "train", 12, false);
  const std::string path = dir_.Join("seg.npz");
  ASSERT_THAT(WriteNpz(path, arrays), IsOk());
  SiteDataOptions options = Geometry(4, 4);
  options.val_fraction = 0.4;
  options.seed = 3;
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(path, options));
  EXPECT_EQ(site.train.size(), 7);
  EXPECT_EQ(site.val.size(), 5);
  ExpectAligned(site.train);
  ExpectAligned(site.val);
}

TEST_F(SegmentationDataTest, SplitShardsKeepEachMaskWithItsImage) {
  std::map<std::string, NpyArray> arrays;
  AddIdentifiedRows(arrays, "train", 16, false);
  AddIdentifiedRows(arrays, "val", 9, false);
  DataSplitOptions split;
  split.input = dir_.Join("seg.npz");
  ASSERT_THAT(WriteNpz(split.input, arrays), IsOk());
  split.out_dir = dir_.Join("shards");
  split.sites = 3;
  split.partition.kind = PartitionKind::kIid;
  split.partition.min_per_site = 2;
  split.partition.seed = 5;
  ASSERT_OK_AND_ASSIGN(auto reports, SplitDataset(split));
  int64_t rows = 0;
  for (const SiteShardReport& report : reports) {
    ASSERT_OK_AND_ASSIGN(ImageSet train, LoadNpzSplit(report.path, "train", true));
    ASSERT_OK_AND_ASSIGN(ImageSet val, LoadNpzSplit(report.path, "val", true));
    ExpectAligned(train);
    ExpectAligned(val);
    rows += train.size();
  }
  EXPECT_EQ(rows, 16);
}

TEST_F(SegmentationDataTest, SplittingAFolderWritesMasksIntoTheShards) {
  const fs::path root = fs::path(dir_.path()) / "site";
  for (int i = 0; i < 8; ++i) {
    std::vector<uint8_t> mask(16, 0);
    std::fill(mask.begin(), mask.begin() + i, 255);
    const std::string name = "img" + std::to_string(i) + ".png";
    WritePng(root / "images" / name, 4, 4, std::vector<uint8_t>(16, 10 * i));
    WritePng(root / "masks" / name, 4, 4, mask);
  }
  DataSplitOptions split;
  split.input = root.string();
  split.load.height = split.load.width = 4;
  split.load.val_fraction = 0.25;
  split.out_dir = dir_.Join("shards");
  split.sites = 2;
  split.partition.min_per_site = 1;
  ASSERT_OK_AND_ASSIGN(auto reports, SplitDataset(split));
  int64_t rows = 0;
  for (const SiteShardReport& report : reports) {
    for (const char* part : {"train", "val"}) {
      ASSERT_OK_AND_ASSIGN(ImageSet set, LoadNpzSplit(report.path, part, true));
      ExpectAligned(set);
      rows += set.size();
    }
  }
  EXPECT_EQ(rows, 8);
}

TEST_F(SegmentationDataTest, FittingMovesTheMaskWithTheImage) {
  ImageSet set;
  set.height = 2;
  set.width = 4;
  set.pixels = {9, 9, 0, 0, 9, 9, 0, 0};
  set.masks = {1, 1, 0, 0, 1, 1, 0, 0};  // Left half.
  set.labels = {1};
  ASSERT_THAT(FitImageSet(set, 8, 8, 1), IsOk());
  // Scale 2: the image lands in rows 2..5, all 8 columns.
  std::vector<uint8_t> expected(64, 0);
  for (int y = 2; y < 6; ++y) {
    for (int x = 0; x < 4; ++x) expected[y * 8 + x] = 1;
  }
  EXPECT_THAT(set.masks, ElementsAreArray(expected));
  for (int i = 0; i < 64; ++i) EXPECT_EQ(set.masks[i] == 1, set.pixels[i] > 4) << i;
}

TEST_F(SegmentationDataTest, NearestMaskResizeKeepsPixelsOnTheirImagePixels) {
  // 3x3 -> 6x6 (scale 2): each source pixel becomes a 2x2 block.
  const std::vector<uint8_t> source = {0, 7, 0, 0, 0, 0, 1, 0, 0};
  std::vector<uint8_t> target(36);
  ResizeMaskPadded(source.data(), 3, 3, target.data(), 6, 6);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 6; ++x) {
      const bool on = (y / 2 == 0 && x / 2 == 1) || (y / 2 == 2 && x / 2 == 0);
      EXPECT_EQ(target[y * 6 + x], on ? 1 : 0) << y << "," << x;
    }
  }
}

TEST_F(SegmentationDataTest, FolderPairsLoadWithLabelsFromMasks) {
  const fs::path root = dir_.path();
  std::vector<uint8_t> mask(4 * 6, 0);
  mask[0] = 255;
  WritePng(root / "train/images/a.png", 4, 6, std::vector<uint8_t>(24, 200));
  WritePng(root / "train/masks/a.png", 4, 6, mask);
  WritePng(root / "train/images/sub/b.png", 4, 6, std::vector<uint8_t>(24, 50));
  WritePng(root / "train/masks/sub/b.png", 4, 6, std::vector<uint8_t>(24, 0));
  WritePng(root / "val/images/c.png", 4, 6, std::vector<uint8_t>(24, 90));
  WritePng(root / "val/masks/c.png", 4, 6, std::vector<uint8_t>(24, 1));
  ASSERT_TRUE(IsSegmentationFolder(root.string()));
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(root.string(), Geometry(6, 4)));
  EXPECT_EQ(site.report.source, "segmentation_folder");
  EXPECT_THAT(site.train.labels, ElementsAre(1, 0));
  EXPECT_EQ(site.train.pixels[0], 200);
  EXPECT_EQ(site.train.masks[0], 1);
  EXPECT_EQ(std::count(site.train.masks.begin(), site.train.masks.end(), 1), 1);
  EXPECT_THAT(site.val.masks, ElementsAreArray(std::vector<uint8_t>(24, 1)));
  ASSERT_OK_AND_ASSIGN(ImageSet val, LoadDataSplit(root.string(), "val", Geometry(6, 4)));
  EXPECT_EQ(val.size(), 1);
  EXPECT_THAT(LoadDataSplit(root.string(), "test", Geometry(6, 4)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no test/images/")));
  // Classification users get the labels and no masks.
  SiteDataOptions plain = Geometry(6, 4);
  plain.with_masks = false;
  ASSERT_OK_AND_ASSIGN(site, LoadSiteDataset(root.string(), plain));
  EXPECT_FALSE(site.train.has_masks());
  EXPECT_THAT(site.train.labels, ElementsAre(1, 0));
}

// A 16-bit grey mask with values 0/1 (as ITK tools write them): 8-bit
// decoding keeps the high byte only and turned every foreground pixel into
// background, silently.
TEST_F(SegmentationDataTest, SixteenBitMasksKeepTheirForeground) {
  // 4 wide, 6 high, 16-bit grey; row 0 is 1, the rest 0.
  constexpr unsigned char kPng[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
      0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x06, 0x10, 0x00, 0x00, 0x00, 0x00, 0x91,
      0xc2, 0xbc, 0xea, 0x00, 0x00, 0x00, 0x0e, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60,
      0x60, 0x84, 0x42, 0x52, 0x00, 0x00, 0x00, 0xfa, 0x00, 0x05, 0x37, 0x2c, 0x98, 0x86, 0x00,
      0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  const fs::path root = dir_.path();
  WritePng(root / "images/a.png", 4, 6, std::vector<uint8_t>(24, 100));
  fs::create_directories(root / "masks");
  {
    std::ofstream out(root / "masks/a.png", std::ios::binary);
    out.write(reinterpret_cast<const char*>(kPng), sizeof(kPng));
  }
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(root.string(), Geometry(6, 4)));
  std::vector<uint8_t> expected(24, 0);
  std::fill(expected.begin(), expected.begin() + 4, 1);
  EXPECT_THAT(site.train.masks, ElementsAreArray(expected));
  EXPECT_THAT(site.train.labels, ElementsAre(1));
}

TEST_F(SegmentationDataTest, FolderErrorsNameTheFile) {
  const fs::path root = dir_.path();
  WritePng(root / "images/a.png", 4, 6, std::vector<uint8_t>(24, 0));
  WritePng(root / "masks/a.png", 6, 4, std::vector<uint8_t>(24, 0));
  EXPECT_THAT(LoadSegmentationFolder(root.string(), 8, 8, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("mask " + (root / "masks/a.png").string() +
                                 " is 6x4 (width x height) but image")));
  WritePng(root / "masks/a.png", 4, 6, std::vector<uint8_t>(24, 0));
  WritePng(root / "images/b.png", 4, 6, std::vector<uint8_t>(24, 0));
  EXPECT_THAT(LoadSegmentationFolder(root.string(), 8, 8, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image " + (root / "images/b.png").string() + " has no mask")));
  fs::remove(root / "images/b.png");
  WritePng(root / "masks/orphan.png", 4, 6, std::vector<uint8_t>(24, 0));
  EXPECT_THAT(
      LoadSegmentationFolder(root.string(), 8, 8, 1),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("mask " + (root / "masks/orphan.png").string() + " has no image")));
}

TEST_F(SegmentationDataTest, SourcesWithoutMasksAreRefusedWhenMasksAreAsked) {
  const fs::path root = dir_.path();
  WritePng(root / "classes/normal/a.png", 4, 4, std::vector<uint8_t>(16, 0));
  EXPECT_THAT(LoadSiteDataset((root / "classes").string(), Geometry(4, 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has no masks")));
}

TEST_F(SegmentationDataTest, DicomImagesPairWithPngMasksByStem) {
  const fs::path root = dir_.path();
  fs::create_directories(root / "images/patient1");
  DicomPixels pixels;
  pixels.rows = 6;
  pixels.columns = 4;
  pixels.values.assign(24, 100);
  ASSERT_THAT(WriteDicomFile((root / "images/patient1/IM1.dcm").string(), pixels), IsOk());
  std::vector<uint8_t> mask(24, 0);
  mask[23] = 1;  // Bottom-right pixel.
  WritePng(root / "masks/patient1/IM1.png", 4, 6, mask);
  ASSERT_OK_AND_ASSIGN(ImageSet set, LoadSegmentationFolder(root.string(), 12, 8, 1));
  ASSERT_EQ(set.size(), 1);
  EXPECT_THAT(set.labels, ElementsAre(1));
  // Scale 2: the pixel becomes the 2x2 block at rows 10..11, columns 6..7.
  std::vector<uint8_t> expected(96, 0);
  for (int y = 10; y < 12; ++y) {
    for (int x = 6; x < 8; ++x) expected[y * 8 + x] = 1;
  }
  EXPECT_THAT(set.masks, ElementsAreArray(expected));
  WritePng(root / "masks/patient1/IM1.png", 6, 4, mask);
  EXPECT_THAT(LoadSegmentationFolder(root.string(), 12, 8, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("IM1.png is 6x4")));
}

}  // namespace
}  // namespace fedmi
