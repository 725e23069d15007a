#include "common/data/dicom_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/data/dicom_writer.h"
#include "common/data/image_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class DicomDataTest : public ::testing::Test {
 protected:
  // A 2x2 MONOCHROME2 8-bit file of one stored value; the value survives a
  // 2x2 read unchanged, so it identifies the file in the loaded pixels.
  void WriteFlat(const fs::path& path, int32_t value, const std::string& uid = "") {
    fs::create_directories(path.parent_path());
    DicomPixels pixels;
    pixels.rows = 2;
    pixels.columns = 2;
    pixels.values.assign(4, value);
    DicomWriteOptions options;
    options.sop_instance_uid = uid;
    ASSERT_THAT(WriteDicomFile(path.string(), pixels, options), IsOk());
    // 0 and 255 are the range's ends; anything else must survive exactly.
  }
  DicomFolderOptions TwoByTwo() {
    DicomFolderOptions options;
    options.read.height = 2;
    options.read.width = 2;
    return options;
  }
  static std::vector<int> FirstPixels(const ImageSet& set) {
    std::vector<int> firsts;
    for (int64_t i = 0; i < set.size(); ++i) firsts.push_back(set.pixels[i * set.ImageBytes()]);
    return firsts;
  }
  ScratchDir dir_;
};

TEST_F(DicomDataTest, ClassFoldersAtAnyDepth) {
  const fs::path root = dir_.Join("export");
  WriteFlat(root / "normal" / "study1" / "series1" / "a.dcm", 10);
  WriteFlat(root / "normal" / "b.DCM", 20);
  WriteFlat(root / "pneumonia" / "c.dcm", 30);
  std::ofstream(root / "pneumonia" / "README.txt") << "ignored";
  EXPECT_TRUE(IsDicomFolder(root.string()));
  ASSERT_OK_AND_ASSIGN(DicomFolderData data, LoadDicomFolder(root.string(), TwoByTwo()));
  EXPECT_EQ(data.report.source, "dicom_folders");
  EXPECT_THAT(data.report.class_names, ElementsAre("normal", "pneumonia"));
  ASSERT_EQ(data.splits.size(), 1u);
  const ImageSet& train = data.splits.at("train");
  EXPECT_THAT(train.labels, ElementsAre(0, 0, 1));
  EXPECT_THAT(FirstPixels(train), ElementsAre(20, 10, 30));  // b.DCM sorts before study1/.
  EXPECT_EQ(train.height, 2);
  EXPECT_EQ(data.report.files_loaded, 3);
}

TEST_F(DicomDataTest, ThreadsNeverChangeTheResult) {
  // More files than one read chunk (256), with bad ones in between.
  const fs::path root = dir_.Join("many");
  for (int i = 0; i < 300; ++i) {
    const fs::path file = root / (i % 3 == 0 ? "b" : "a") / absl::StrCat(1000 + i, ".dcm");
    if (i % 50 == 7) {
      fs::create_directories(file.parent_path());
      std::ofstream(file) << "not dicom";
    } else {
      WriteFlat(file, i % 250);
    }
  }
  DicomFolderOptions options = TwoByTwo();
  options.threads = 1;
  ASSERT_OK_AND_ASSIGN(DicomFolderData one, LoadDicomFolder(root.string(), options));
  options.threads = 3;
  std::vector<std::string> order;
  ASSERT_OK_AND_ASSIGN(DicomFolderData three,
                       LoadDicomFolder(root.string(), options, [&](const DicomFileVisit& visit) {
                         order.push_back(visit.path);
                       }));
  EXPECT_EQ(one.splits.at("train").pixels, three.splits.at("train").pixels);
  EXPECT_EQ(one.splits.at("train").labels, three.splits.at("train").labels);
  EXPECT_EQ(three.report.files_loaded, 294);
  EXPECT_EQ(three.report.first_skipped, one.report.first_skipped);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(order.size(), 300u);
}

TEST_F(DicomDataTest, SplitFoldersShareClassIndices) {
  const fs::path root = dir_.Join("split");
  WriteFlat(root / "train" / "a" / "1.dcm", 1);
  WriteFlat(root / "train" / "c" / "1.dcm", 3);
  WriteFlat(root / "val" / "b" / "1.dcm", 2);
  WriteFlat(root / "test" / "c" / "1.dcm", 4);
  ASSERT_OK_AND_ASSIGN(DicomFolderData data, LoadDicomFolder(root.string(), TwoByTwo()));
  EXPECT_THAT(data.report.class_names, ElementsAre("a", "b", "c"));
  EXPECT_THAT(data.splits.at("train").labels, ElementsAre(0, 2));
  EXPECT_THAT(data.splits.at("val").labels, ElementsAre(1));
  EXPECT_THAT(data.splits.at("test").labels, ElementsAre(2));
}

TEST_F(DicomDataTest, LabelsCsvByRelativePathWithSplits) {
  const fs::path root = dir_.Join("csv");
  WriteFlat(root / "p1" / "x.dcm", 11);
  WriteFlat(root / "p2" / "y.dcm", 12);
  WriteFlat(root / "p3" / "z.dcm", 13);
  WriteFlat(root / "unlisted.dcm", 14);
  std::ofstream(root / "labels.csv") << "file,label,split\n"
                                        "p1/x.dcm,pneumonia,train\n"
                                        "\"p2/y.dcm\",normal,val\n"
                                        "p3/z.dcm,normal,\n";
  ASSERT_OK_AND_ASSIGN(DicomFolderData data, LoadDicomFolder(root.string(), TwoByTwo()));
  EXPECT_EQ(data.report.source, "dicom_csv");
  EXPECT_THAT(data.report.class_names, ElementsAre("normal", "pneumonia"));
  EXPECT_THAT(data.splits.at("train").labels, ElementsAre(1, 0));
  EXPECT_THAT(FirstPixels(data.splits.at("train")), ElementsAre(11, 13));
  EXPECT_THAT(data.splits.at("val").labels, ElementsAre(0));
  EXPECT_EQ(data.report.files_unlabelled, 1);
  EXPECT_EQ(data.report.files_skipped, 0);
}

TEST_F(DicomDataTest, LabelsCsvBySopInstanceUidWithIntegerLabels) {
  const fs::path root = dir_.Join("uid");
  WriteFlat(root / "a.dcm", 21, "1.2.3.1");
  WriteFlat(root / "b.dcm", 22, "1.2.3.2");
  std::ofstream(root / "labels.csv") << "sop_instance_uid,label\n1.2.3.2,0\n1.2.3.1,3\n";
  ASSERT_OK_AND_ASSIGN(DicomFolderData data, LoadDicomFolder(root.string(), TwoByTwo()));
  EXPECT_TRUE(data.report.class_names.empty());
  EXPECT_THAT(data.splits.at("train").labels, ElementsAre(3, 0));
  EXPECT_THAT(FirstPixels(data.splits.at("train")), ElementsAre(21, 22));
}

TEST_F(DicomDataTest, BadFilesAreCountedUntilTooMany) {
  const fs::path root = dir_.Join("bad");
  for (int i = 0; i < 9; ++i) WriteFlat(root / "a" / (std::to_string(i) + ".dcm"), 40 + i);
  std::ofstream(root / "a" / "broken.dcm") << std::string(400, 'x');
  DicomFolderOptions options = TwoByTwo();
  options.max_bad_fraction = 0.1;  // 1 of 10 is allowed.
  std::vector<std::string> visited_bad;
  ASSERT_OK_AND_ASSIGN(DicomFolderData data,
                       LoadDicomFolder(root.string(), options, [&](const DicomFileVisit& visit) {
                         if (!visit.status.ok()) visited_bad.push_back(visit.path);
                       }));
  EXPECT_EQ(data.report.files_seen, 10);
  EXPECT_EQ(data.report.files_loaded, 9);
  EXPECT_THAT(data.report.skipped_by_reason, ElementsAre(Pair("not_dicom", 1)));
  ASSERT_EQ(data.report.first_skipped.size(), 1u);
  EXPECT_THAT(data.report.first_skipped[0], HasSubstr("broken.dcm"));
  EXPECT_THAT(visited_bad, ElementsAre(HasSubstr("broken.dcm")));
  EXPECT_THAT(FormatLoadReport(data.report), HasSubstr("skipped 1 files: 1 not_dicom"));

  options.max_bad_fraction = 0.05;
  EXPECT_THAT(LoadDicomFolder(root.string(), options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("1 of 10 files skipped (10.0%), more than max_bad_fraction 5.0%: "
                                 "dicom " +
                                 (root / "a" / "broken.dcm").string() + ": not a DICOM file")));
}

TEST_F(DicomDataTest, MissingCsvFilesAndMultiFrameCountAsBad) {
  const fs::path root = dir_.Join("missing");
  WriteFlat(root / "a.dcm", 50);
  DicomPixels two_frames;
  two_frames.rows = two_frames.columns = 2;
  two_frames.frames = 2;
  two_frames.values.assign(8, 60);
  ASSERT_THAT(WriteDicomFile((root / "multi.dcm").string(), two_frames), IsOk());
  std::ofstream(root / "labels.csv") << "file,label\na.dcm,0\nmulti.dcm,1\ngone.dcm,1\n";
  DicomFolderOptions options = TwoByTwo();
  options.max_bad_fraction = 1.0;
  ASSERT_OK_AND_ASSIGN(DicomFolderData data, LoadDicomFolder(root.string(), options));
  EXPECT_THAT(data.report.skipped_by_reason,
              UnorderedElementsAre(Pair("missing_file", 1), Pair("multi_frame", 1)));
  options.read.first_frame_only = true;
  ASSERT_OK_AND_ASSIGN(data, LoadDicomFolder(root.string(), options));
  EXPECT_THAT(data.splits.at("train").labels, ElementsAre(0, 1));
  EXPECT_THAT(data.report.conversions, ElementsAre(Pair("first_frame", 1)));
}

TEST_F(DicomDataTest, CsvErrorsNameTheLine) {
  const fs::path root = dir_.Join("errors");
  WriteFlat(root / "a.dcm", 1);
  std::ofstream(root / "labels.csv") << "path,class\n";
  EXPECT_THAT(LoadDicomFolder(root.string()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a 'file' or")));
  std::ofstream(root / "labels.csv") << "file,label,split\na.dcm,0,holdout\n";
  EXPECT_THAT(LoadDicomFolder(root.string()), StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("line 2 has split 'holdout'")));
  EXPECT_THAT(LoadDicomFolder(dir_.Join("nowhere")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(DicomDataTest, SiteDatasetAndSplitsFromADicomFolder) {
  const fs::path root = dir_.Join("site");
  for (int i = 0; i < 4; ++i) WriteFlat(root / "train" / "neg" / (std::to_string(i) + ".dcm"), 70);
  for (int i = 0; i < 4; ++i) WriteFlat(root / "train" / "pos" / (std::to_string(i) + ".dcm"), 80);
  WriteFlat(root / "val" / "pos" / "v.dcm", 90);
  WriteFlat(root / "test" / "neg" / "t.dcm", 100);
  SiteDataOptions options;
  options.height = 4;
  options.width = 6;
  options.channels = 3;
  ASSERT_OK_AND_ASSIGN(SiteDataset site, LoadSiteDataset(root.string(), options));
  EXPECT_EQ(site.train.size(), 8);
  EXPECT_THAT(site.val.labels, ElementsAre(1));
  EXPECT_EQ(site.num_classes, 2);
  EXPECT_EQ(site.train.height, 4);
  EXPECT_EQ(site.train.width, 6);
  EXPECT_EQ(site.train.channels, 3);
  // 2x2 into 4x6: a 4x4 square in columns 1..4, columns 0 and 5 padded.
  EXPECT_THAT(std::vector<int>(site.val.pixels.begin(), site.val.pixels.begin() + 18),
              ElementsAre(0, 0, 0, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 0, 0, 0));
  EXPECT_EQ(site.report.conversions.at("grey_to_rgb"), 10);
  EXPECT_EQ(site.report.conversions.at("resized"), 10);

  DataLoadReport report;
  ASSERT_OK_AND_ASSIGN(ImageSet test, LoadDataSplit(root.string(), "test", options, &report));
  EXPECT_THAT(test.labels, ElementsAre(0));
  EXPECT_EQ(report.files_loaded, 10);
}

}  // namespace
}  // namespace fedmi
