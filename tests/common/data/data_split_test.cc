#include "common/data/data_split.h"

#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <set>
#include <string>

#include "common/data/dicom_writer.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

int64_t Sum(const std::vector<int64_t>& values) {
  return std::accumulate(values.begin(), values.end(), int64_t{0});
}

// An ImageSet of `rows` 2x2 images whose four pixels all encode the row
// index (mod 256, offset by `tag`), labels alternating 0/1.
ImageSet TaggedImages(int64_t rows, uint8_t tag) {
  ImageSet images;
  images.height = 2;
  images.width = 2;
  for (int64_t row = 0; row < rows; ++row) {
    for (int p = 0; p < 4; ++p) images.pixels.push_back(static_cast<uint8_t>(tag + row));
    images.labels.push_back(row % 2);
  }
  return images;
}

class DataSplitTest : public ::testing::Test {
 protected:
  std::string WriteInput(bool with_val) {
    const ImageSet train = TaggedImages(120, 0);
    const ImageSet val = TaggedImages(30, 200);
    std::map<std::string, NpyArray> arrays;
    arrays["train_images"] = *ImagesToNpy(train);
    arrays["train_labels"] = LabelsToNpy(train);
    if (with_val) {
      arrays["val_images"] = *ImagesToNpy(val);
      arrays["val_labels"] = LabelsToNpy(val);
    }
    const std::string path = dir_.Join("input.npz");
    EXPECT_TRUE(WriteNpz(path, arrays).ok());
    return path;
  }

  ScratchDir dir_;
};

TEST_F(DataSplitTest, WritesOneLoadableShardPerSite) {
  DataSplitOptions options;
  options.input = WriteInput(/*with_val=*/true);
  options.sites = 3;
  options.partition.kind = PartitionKind::kDirichlet;
  options.partition.alpha = 1.0;
  options.partition.seed = 5;
  options.partition.min_per_site = 10;
  options.out_dir = dir_.Join("out/nested");

  absl::StatusOr<std::vector<SiteShardReport>> reports = SplitDataset(options);
  ASSERT_TRUE(reports.ok()) << reports.status();
  ASSERT_EQ(reports->size(), 3u);

  std::set<int> train_tags, val_tags;
  int64_t train_rows = 0, val_rows = 0;
  for (int k = 0; k < 3; ++k) {
    const SiteShardReport& report = (*reports)[k];
    EXPECT_EQ(report.site, "site-" + std::to_string(k + 1));
    EXPECT_EQ(report.path, options.out_dir + "/site-" + std::to_string(k + 1) + ".npz");
    ASSERT_EQ(report.train_class_counts.size(), 2u);
    ASSERT_EQ(report.val_class_counts.size(), 2u);
    EXPECT_GE(Sum(report.train_class_counts), 10);
    // val min_per_site = min(10, max(1, 30 / (8 * 3))) = 1.
    EXPECT_GE(Sum(report.val_class_counts), 1);

    absl::StatusOr<std::map<std::string, NpyArray>> arrays = ReadNpz(report.path);
    ASSERT_TRUE(arrays.ok()) << arrays.status();
    EXPECT_EQ(arrays->at("train_labels").dtype, "|u1");
    EXPECT_THAT(arrays->at("train_labels").shape, ElementsAre(Sum(report.train_class_counts), 1));

    SiteDataOptions at_shard_size;  // 2x2: the shards' images pass through.
    at_shard_size.height = at_shard_size.width = 2;
    absl::StatusOr<SiteDataset> site = LoadSiteDataset(report.path, at_shard_size);
    ASSERT_TRUE(site.ok()) << site.status();
    EXPECT_EQ(site->train.size(), Sum(report.train_class_counts));
    EXPECT_EQ(site->val.size(), Sum(report.val_class_counts));
    for (int64_t i = 0; i < site->train.size(); ++i) {
      const int tag = site->train.pixels[i * 4];
      EXPECT_TRUE(train_tags.insert(tag).second) << "train row " << tag << " in two shards";
      EXPECT_EQ(site->train.labels[i], tag % 2);  // Labels travel with their images.
    }
    for (int64_t i = 0; i < site->val.size(); ++i) {
      val_tags.insert(site->val.pixels[i * 4]);
    }
    train_rows += site->train.size();
    val_rows += site->val.size();
  }
  EXPECT_EQ(train_rows, 120);
  EXPECT_EQ(val_rows, 30);
  EXPECT_EQ(train_tags.size(), 120u);
  EXPECT_EQ(val_tags.size(), 30u);
}

TEST_F(DataSplitTest, SplitsADicomFolderIntoNpzShards) {
  // 20 train files per class; no val/, so val is held out of train.
  const fs::path root = dir_.Join("dicom");
  for (int i = 0; i < 40; ++i) {
    const fs::path file = root / (i % 2 == 0 ? "neg" : "pos") / (std::to_string(i) + ".dcm");
    fs::create_directories(file.parent_path());
    DicomPixels pixels;
    pixels.rows = 4;
    pixels.columns = 2;
    pixels.values.assign(8, 100 + i);
    ASSERT_THAT(WriteDicomFile(file.string(), pixels), IsOk());
  }
  DataSplitOptions options;
  options.input = root.string();
  options.load.height = options.load.width = 4;
  options.load.val_fraction = 0.25;
  options.sites = 2;
  options.partition.min_per_site = 1;
  options.out_dir = dir_.Join("dicom-shards");
  ASSERT_OK_AND_ASSIGN(std::vector<SiteShardReport> reports, SplitDataset(options));
  ASSERT_EQ(reports.size(), 2u);
  int64_t train = 0, val = 0;
  for (const SiteShardReport& report : reports) {
    train += Sum(report.train_class_counts);
    val += Sum(report.val_class_counts);
    ASSERT_OK_AND_ASSIGN(auto arrays, ReadNpz(report.path));
    EXPECT_THAT(arrays.at("train_images").shape, ElementsAre(Sum(report.train_class_counts), 4, 4));
  }
  EXPECT_EQ(train, 30);
  EXPECT_EQ(val, 10);
}

TEST_F(DataSplitTest, SameOptionsGiveSameShards) {
  DataSplitOptions options;
  options.input = WriteInput(/*with_val=*/true);
  options.sites = 2;
  options.partition.kind = PartitionKind::kQuantity;
  options.out_dir = dir_.Join("a");
  absl::StatusOr<std::vector<SiteShardReport>> first = SplitDataset(options);
  options.out_dir = dir_.Join("b");
  absl::StatusOr<std::vector<SiteShardReport>> second = SplitDataset(options);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ((*first)[k].train_class_counts, (*second)[k].train_class_counts);
    absl::StatusOr<std::map<std::string, NpyArray>> a = ReadNpz((*first)[k].path);
    absl::StatusOr<std::map<std::string, NpyArray>> b = ReadNpz((*second)[k].path);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->at("train_images").data, b->at("train_images").data);
    EXPECT_EQ(a->at("val_images").data, b->at("val_images").data);
  }
}

TEST_F(DataSplitTest, ReportsPreciseErrors) {
  DataSplitOptions options;
  options.out_dir = dir_.Join("out");
  options.input = dir_.Join("missing.npz");
  EXPECT_THAT(SplitDataset(options),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("data file " + options.input + " does not exist")));

  options.input = WriteInput(/*with_val=*/false);
  EXPECT_THAT(SplitDataset(options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("has no member 'val_images'")));

  options.input = WriteInput(/*with_val=*/true);
  options.sites = 0;
  EXPECT_THAT(SplitDataset(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 1 site, got 0")));

  options.sites = 13;  // 13 * 10 > 120 train rows
  EXPECT_THAT(SplitDataset(options), StatusIs(absl::StatusCode::kFailedPrecondition,
                                              HasSubstr("cannot split train of " + options.input)));
  EXPECT_FALSE(fs::exists(options.out_dir));
}

TEST(DataSplitRealTest, SplitsPneumoniaMnist) {
  const char* source_dir = std::getenv("FEDMI_SOURCE_DIR");
  const std::string input =
      std::string(source_dir != nullptr ? source_dir : ".") + "/../shared/data/pneumoniamnist.npz";
  if (!fs::exists(input)) GTEST_SKIP() << input << " is not present";
  ScratchDir out_dir;

  DataSplitOptions options;
  options.input = input;
  options.sites = 3;
  options.partition.kind = PartitionKind::kDirichlet;
  options.partition.alpha = 0.5;
  options.partition.seed = 0;
  options.out_dir = out_dir.path();
  absl::StatusOr<std::vector<SiteShardReport>> reports = SplitDataset(options);
  ASSERT_TRUE(reports.ok()) << reports.status();
  ASSERT_EQ(reports->size(), 3u);
  std::vector<int64_t> train_totals(2, 0), val_totals(2, 0);
  for (const SiteShardReport& report : *reports) {
    for (int c = 0; c < 2; ++c) {
      train_totals[c] += report.train_class_counts[c];
      val_totals[c] += report.val_class_counts[c];
    }
    EXPECT_GE(Sum(report.train_class_counts), 10);
    EXPECT_GE(Sum(report.val_class_counts), 10);
  }
  EXPECT_THAT(train_totals, ElementsAre(1214, 3494));
  EXPECT_THAT(val_totals, ElementsAre(135, 389));
}

}  // namespace
}  // namespace fedmi
