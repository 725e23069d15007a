// `fedmi data inspect` through the CLI11 app main() builds, on a DICOM
// folder made with WriteDicomFile: counts, header histograms, unusable
// files, imbalance, the preview, and the exit codes.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/data/dicom_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A 16x8 (rows x columns) 12-bit image: an "L" (left column and bottom row
// bright) on a dark ground, so a preview shows orientation and inversion.
DicomPixels LetterL(bool inverted) {
  DicomPixels pixels;
  pixels.rows = 16;
  pixels.columns = 8;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 8; ++x) {
      const int32_t bright = (x < 2 || y >= 14) ? 4000 : 300;
      pixels.values.push_back(inverted ? 4095 - bright : bright);
    }
  }
  return pixels;
}

void WriteSite(const fs::path& root) {
  DicomWriteOptions mono2;
  mono2.bits_stored = 12;
  mono2.modality = "CR";
  DicomWriteOptions mono1 = mono2;
  mono1.monochrome1 = true;
  mono1.transfer_syntax = DicomTransferSyntax::kJpegLsLossless;
  fs::create_directories(root / "normal");
  fs::create_directories(root / "pneumonia");
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(WriteDicomFile((root / "normal" / (std::to_string(i) + ".dcm")).string(),
                               LetterL(false), mono2),
                IsOk());
  }
  ASSERT_THAT(WriteDicomFile((root / "pneumonia" / "a.dcm").string(), LetterL(true), mono1),
              IsOk());
  std::ofstream(root / "pneumonia" / "broken.dcm") << std::string(300, 'x');
}

TEST(DataInspectTest, SummarisesADicomFolderAsJson) {
  ScratchDir dir;
  const fs::path root = dir.Join("site");
  WriteSite(root);
  const std::string preview = dir.Join("preview.png");
  CliOutcome outcome = RunCliCommands(AddDataCommands, "data",
                                      {"inspect", root.string(), "--height", "16", "--width", "16",
                                       "--preview", preview, "--json"});
  ASSERT_EQ(outcome.exit_code, kExitOk) << outcome.err;
  const nlohmann::json json = outcome.Json();
  ASSERT_FALSE(json.is_null()) << outcome.out;
  EXPECT_EQ(json["source"], "dicom_folders");
  EXPECT_EQ(json["classes"], nlohmann::json({"normal", "pneumonia"}));
  EXPECT_EQ(json["splits"]["train"]["class_counts"], nlohmann::json({3, 1}));
  EXPECT_EQ(json["splits"]["train"]["majority_minority_ratio"], 3.0);
  EXPECT_EQ(json["files_skipped"], 1);
  EXPECT_EQ(json["skipped_by_reason"]["not_dicom"], 1);
  ASSERT_EQ(json["unusable_files"].size(), 1u);
  EXPECT_THAT(json["unusable_files"][0].get<std::string>(), HasSubstr("broken.dcm"));
  EXPECT_EQ(json["photometric_interpretation"],
            nlohmann::json({{"MONOCHROME1", 1}, {"MONOCHROME2", 3}}));
  EXPECT_EQ(json["modality"], nlohmann::json({{"CR", 4}}));
  EXPECT_EQ(json["bits_stored"], nlohmann::json({{"12", 4}}));
  EXPECT_EQ(json["size"], nlohmann::json({{"16x8", 4}}));
  EXPECT_EQ(json["transfer_syntax"]["JPEG-LS Lossless"], 1);
  EXPECT_EQ(json["preview"]["rows"], nlohmann::json({"normal", "pneumonia"}));
  // 8 tiles of 16 * 8 = 128 pixels with 4-pixel gutters; 2 rows.
  std::ifstream png(preview, std::ios::binary);
  std::string header(24, '\0');
  png.read(header.data(), 24);
  ASSERT_EQ(header.substr(1, 3), "PNG");
  auto be32 = [&](int at) {
    return (static_cast<uint8_t>(header[at]) << 24) | (static_cast<uint8_t>(header[at + 1]) << 16) |
           (static_cast<uint8_t>(header[at + 2]) << 8) | static_cast<uint8_t>(header[at + 3]);
  };
  EXPECT_EQ(be32(16), 8 * (128 + 4) + 4);
  EXPECT_EQ(be32(20), 2 * (128 + 4) + 4);
  if (const char* keep = std::getenv("FEDMI_KEEP_PREVIEW")) fs::copy_file(preview, keep);
}

TEST(DataInspectTest, TextNamesThePreviewRowsAndFailuresExitOne) {
  ScratchDir dir;
  const fs::path root = dir.Join("site");
  WriteSite(root);
  CliOutcome text = RunCliCommands(AddDataCommands, "data",
                                   {"inspect", root.string(), "--preview", dir.Join("p.png")});
  ASSERT_EQ(text.exit_code, kExitOk) << text.err;
  EXPECT_THAT(text.out, HasSubstr("one row per class, top to bottom: normal, pneumonia"));
  EXPECT_THAT(text.out, HasSubstr("broken.dcm: not a DICOM file"));
  EXPECT_THAT(text.out, HasSubstr("3.00"));

  CliOutcome missing =
      RunCliCommands(AddDataCommands, "data", {"inspect", dir.Join("nowhere"), "--json"});
  EXPECT_EQ(missing.exit_code, kExitFailure);
  EXPECT_THAT(missing.err, HasSubstr("does not exist"));
  CliOutcome usage =
      RunCliCommands(AddDataCommands, "data", {"inspect", root.string(), "--channels", "2"});
  EXPECT_EQ(usage.exit_code, kExitUsage);
}

TEST(DataInspectTest, QualityFindsRepeatsAndReadsMonochrome1TheRightWayUp) {
  ScratchDir dir;
  const fs::path root = dir.Join("site");
  WriteSite(root);
  // Three identical normal files, and a MONOCHROME1 file whose stored values
  // are inverted: read the right way up, all four are the same image. Were
  // MONOCHROME1 not handled, the fourth would be flagged inverted instead.
  CliOutcome outcome = RunCliCommands(
      AddDataCommands, "data",
      {"inspect", root.string(), "--height", "16", "--width", "16", "--quality", "--json"});
  ASSERT_EQ(outcome.exit_code, kExitOk) << outcome.err;
  const nlohmann::json quality = outcome.Json()["quality"];
  EXPECT_EQ(quality["images_checked"], 4);
  EXPECT_EQ(quality["counts"], nlohmann::json({{"near-duplicate", 3}}));
  ASSERT_EQ(quality["findings"].size(), 3u);
  for (const nlohmann::json& finding : quality["findings"]) {
    EXPECT_THAT(finding["duplicate_of"].get<std::string>(), HasSubstr("normal/0.dcm"));
    EXPECT_EQ(finding["value"], 0.0);
  }
  EXPECT_THAT(quality["findings"][2]["image"].get<std::string>(), HasSubstr("pneumonia/a.dcm"));
  EXPECT_EQ(quality["thresholds"]["inverted_max_correlation"], -0.05);
  EXPECT_EQ(quality["thresholds"]["blank_max_thumbnail_std"], 3.0);

  CliOutcome text =
      RunCliCommands(AddDataCommands, "data",
                     {"inspect", root.string(), "--height", "16", "--width", "16", "--quality"});
  ASSERT_EQ(text.exit_code, kExitOk) << text.err;
  EXPECT_THAT(text.out, HasSubstr("quality: 4 images checked; near-duplicate 3"));
  EXPECT_THAT(text.out, HasSubstr("a.dcm: near-duplicate of "));
}

}  // namespace
}  // namespace fedmi::cli
