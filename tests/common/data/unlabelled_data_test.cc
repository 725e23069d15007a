#include "common/data/unlabelled_data.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/env.h"
#include "common/data/dicom_writer.h"
#include "common/data/image_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/data/tiny_npz.h"
#include "tests/test_util.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

void WritePng(const fs::path& path, uint8_t value) {
  fs::create_directories(path.parent_path());
  std::vector<uint8_t> pixels(16, value);
  ASSERT_NE(stbi_write_png(path.c_str(), 4, 4, 1, pixels.data(), 4), 0);
}

class UnlabelledNpzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(WriteNpz(path_, {{"train_images", Images(3, 10)},
                                 {"train_labels", Labels({0, 1, 0})},
                                 {"val_images", Images(2, 20)},
                                 {"val_labels", Labels({0, 1})},
                                 {kNpzUnlabelledImages, Images(4, 100)}}),
                IsOk());
  }
  ScratchDir dir_;
  std::string path_ = dir_.Join("site.npz");
};

TEST_F(UnlabelledNpzTest, TheSiteReadsItsPoolWithIdsOfTheImagesBytes) {
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(path_, At4x4()));
  EXPECT_EQ(site.train.size(), 3);
  ASSERT_EQ(site.unlabelled.images.size(), 4);
  EXPECT_EQ(site.unlabelled.images.labels[0], kNoLabel);
  EXPECT_EQ(site.unlabelled.images.pixels[16], 101);
  EXPECT_EQ(site.unlabelled.ids[1], ImageId(site.unlabelled.images, 1));
  EXPECT_NE(site.unlabelled.ids[0], site.unlabelled.ids[1]);
  EXPECT_EQ(site.unlabelled.ids[0].size(), 16u);
}

TEST_F(UnlabelledNpzTest, ImportMovesTheLabelledRowsAndKeepsTheOthersIds) {
  ASSERT_OK_AND_ASSIGN(SiteDataset before, LoadSiteDataset(path_, At4x4()));
  const std::vector<std::string> ids = before.unlabelled.ids;
  ASSERT_OK_AND_ASSIGN(LabelImportReport report,
                       ImportLabels(path_, {{ids[1], "1", 2}, {ids[3], "0", 3}}));
  EXPECT_EQ(report.imported, 2);
  EXPECT_EQ(report.per_class[0], 1);
  EXPECT_EQ(report.per_class[1], 1);
  EXPECT_EQ(report.unlabelled_left, 2);
  ASSERT_OK_AND_ASSIGN(SiteDataset after, LoadSiteDataset(path_, At4x4()));
  ASSERT_EQ(after.train.size(), 5);
  EXPECT_EQ(after.train.labels[3], 1);
  EXPECT_EQ(after.train.pixels[3 * 16], 101);
  EXPECT_EQ(after.train.labels[4], 0);
  EXPECT_EQ(after.train.pixels[4 * 16], 103);
  EXPECT_EQ(after.val.size(), 2);
  EXPECT_EQ(after.unlabelled.ids, (std::vector<std::string>{ids[0], ids[2]}));
  // The same list again finds nothing to label: nothing changes.
  EXPECT_THAT(ImportLabels(path_, {{ids[1], "1", 2}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nothing was changed")));
}

TEST_F(UnlabelledNpzTest, OneBadRowChangesNothing) {
  ASSERT_OK_AND_ASSIGN(SiteDataset before, LoadSiteDataset(path_, At4x4()));
  const std::string& id = before.unlabelled.ids[0];
  EXPECT_THAT(ImportLabels(path_, {{id, "1", 2}, {"0123456789abcdef", "0", 3}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("0123456789abcdef")));
  EXPECT_THAT(ImportLabels(path_, {{id, "pneumonia", 7}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 7")));
  EXPECT_THAT(ImportLabels(path_, {{id, "2", 7}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0 to 1")));
  ASSERT_OK_AND_ASSIGN(SiteDataset after, LoadSiteDataset(path_, At4x4()));
  EXPECT_EQ(after.train.size(), 3);
  EXPECT_EQ(after.unlabelled.images.size(), 4);
}

TEST_F(UnlabelledNpzTest, AMalformedPoolIsNamed) {
  NpyArray wrong{"<f4", {1, 4, 4}, std::vector<char>(64)};
  ASSERT_THAT(WriteNpz(path_, {{"train_images", Images(3, 10)},
                               {"train_labels", Labels({0, 1, 0})},
                               {kNpzUnlabelledImages, wrong}}),
              IsOk());
  EXPECT_THAT(LoadSiteDataset(path_, At4x4()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unlabelled_images")));
}

TEST(UnlabelledFolderTest, UnlabelledIsNotAClassAndImportMovesFilesIntoTheirClass) {
  ScratchDir dir;
  const fs::path root = dir.path();
  WritePng(root / "train" / "normal" / "a.png", 10);
  WritePng(root / "train" / "pneumonia" / "b.png", 200);
  WritePng(root / "unlabelled" / "u1.png", 30);
  WritePng(root / "unlabelled" / "u2.png", 40);
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(root.string(), At4x4()));
  EXPECT_EQ(site.num_classes, 2);
  EXPECT_EQ(site.train.size(), 2);
  EXPECT_EQ(site.unlabelled.ids,
            (std::vector<std::string>{"unlabelled/u1.png", "unlabelled/u2.png"}));
  ASSERT_OK_AND_ASSIGN(LabelImportReport report,
                       ImportLabels(root.string(), {{"unlabelled/u2.png", "pneumonia", 2}}));
  EXPECT_EQ(report.imported, 1);
  EXPECT_EQ(report.unlabelled_left, 1);
  EXPECT_TRUE(fs::exists(root / "train" / "pneumonia" / "u2.png"));
  EXPECT_FALSE(fs::exists(root / "unlabelled" / "u2.png"));
  // Nothing outside unlabelled/ can be moved by a crafted list.
  EXPECT_THAT(ImportLabels(root.string(), {{"train/normal/a.png", "pneumonia", 2}}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ImportLabels(root.string(), {{"unlabelled/../train/normal/a.png", "1", 2}}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(fs::exists(root / "train" / "normal" / "a.png"));
  // A class index works as well as a name.
  ASSERT_THAT(ImportLabels(root.string(), {{"unlabelled/u1.png", "0", 2}}), IsOk());
  EXPECT_TRUE(fs::exists(root / "train" / "normal" / "u1.png"));
}

// A hospital's DICOM export: rows of labels.csv with an empty label are the
// pool, named by their file; import fills in those cells.
TEST(UnlabelledDicomTest, EmptyLabelRowsAreThePoolAndImportFillsThemIn) {
  ScratchDir dir;
  const fs::path root = dir.path();
  int value = 10;
  fs::create_directories(root / "studies");
  for (const char* name : {"a.dcm", "b.dcm", "c.dcm", "d.dcm"}) {
    DicomPixels pixels;
    pixels.rows = pixels.columns = 4;
    pixels.values.assign(16, value);
    value += 20;
    ASSERT_THAT(WriteDicomFile((root / "studies" / name).string(), pixels, {}), IsOk());
  }
  std::ofstream(root / "labels.csv") << "file,label,split\n"
                                        "studies/a.dcm,normal,train\n"
                                        "studies/b.dcm,pneumonia,\n"
                                        "studies/c.dcm,,\n"
                                        "\"studies/d.dcm\",,\n";
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(root.string(), At4x4()));
  EXPECT_EQ(site.train.size(), 2);
  EXPECT_EQ(site.unlabelled.ids, (std::vector<std::string>{"studies/c.dcm", "studies/d.dcm"}));
  ASSERT_EQ(site.unlabelled.images.size(), 2);
  EXPECT_EQ(site.unlabelled.images.labels[0], kNoLabel);
  EXPECT_THAT(ImportLabels(root.string(), {{"studies/c.dcm", "cancer", 2}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("normal, pneumonia")));
  EXPECT_THAT(ImportLabels(root.string(), {{"studies/a.dcm", "normal", 2}}),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(LabelImportReport report,
                       ImportLabels(root.string(), {{"studies/d.dcm", "pneumonia", 2}}));
  EXPECT_EQ(report.imported, 1);
  EXPECT_EQ(report.unlabelled_left, 1);
  ASSERT_OK_AND_ASSIGN(SiteDataset after, LoadSiteDataset(root.string(), At4x4()));
  EXPECT_EQ(after.train.size(), 3);
  EXPECT_EQ(after.train.labels.back(), 1);
  EXPECT_EQ(after.unlabelled.ids, (std::vector<std::string>{"studies/c.dcm"}));
}

}  // namespace
}  // namespace fedmi
