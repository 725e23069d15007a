#include "common/data/dicom_image.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "common/data/dicom_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

DicomPixels Grey(int64_t rows, int64_t columns, std::vector<int32_t> values, int64_t frames = 1) {
  DicomPixels pixels;
  pixels.rows = rows;
  pixels.columns = columns;
  pixels.frames = frames;
  pixels.values = std::move(values);
  return pixels;
}

// Geometry equal to the source's, so the resize is the identity and each
// output pixel is the pipeline's value for one stored value.
DicomReadOptions Native(int64_t rows, int64_t columns) {
  DicomReadOptions options;
  options.height = rows;
  options.width = columns;
  return options;
}

uint8_t Round255(double y) { return static_cast<uint8_t>(std::lround(y * 255.0)); }

class DicomImageTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const DicomPixels& pixels,
                    const DicomWriteOptions& options = {}) {
    const std::string path = dir_.Join(name);
    EXPECT_THAT(WriteDicomFile(path, pixels, options), IsOk());
    return path;
  }
  std::vector<uint8_t> Read(const std::string& path, const DicomReadOptions& options) {
    absl::StatusOr<PreprocessedDicom> image = ReadDicomImage(path, options);
    EXPECT_THAT(image, IsOk());
    return image.ok() ? image->pixels : std::vector<uint8_t>{};
  }
  ScratchDir dir_;
};

TEST_F(DicomImageTest, EightBitRangeIsTheIdentity) {
  const std::string path = Write("a.dcm", Grey(2, 2, {0, 17, 200, 255}));
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, Native(2, 2)));
  EXPECT_THAT(image.pixels, ElementsAre(0, 17, 200, 255));
  EXPECT_EQ(image.facts.voi, "range");
  EXPECT_EQ(image.facts.photometric_interpretation, "MONOCHROME2");
  EXPECT_EQ(image.facts.bits_allocated, 8);
  EXPECT_EQ(image.facts.bits_stored, 8);
  EXPECT_FALSE(image.facts.is_signed);
  EXPECT_EQ(image.facts.rows, 2);
  EXPECT_EQ(image.facts.columns, 2);
  EXPECT_EQ(image.facts.frames, 1);
  EXPECT_EQ(image.facts.modality, "OT");
  EXPECT_EQ(image.facts.transfer_syntax_uid, "1.2.840.10008.1.2.1");
}

TEST_F(DicomImageTest, TwelveAndSixteenBitsMapTheirWholeRange) {
  DicomWriteOptions twelve;
  twelve.bits_stored = 12;
  const std::string path12 = Write("12.dcm", Grey(1, 4, {0, 4095, 1000, 2048}), twelve);
  EXPECT_THAT(Read(path12, Native(1, 4)),
              ElementsAre(0, 255, Round255(1000 / 4095.0), Round255(2048 / 4095.0)));
  DicomWriteOptions sixteen;
  sixteen.bits_stored = 16;
  const std::string path16 = Write("16.dcm", Grey(1, 3, {0, 65535, 30000}), sixteen);
  EXPECT_THAT(Read(path16, Native(1, 3)), ElementsAre(0, 255, Round255(30000 / 65535.0)));
}

TEST_F(DicomImageTest, SignedValuesAreMaskedAndSignExtended) {
  DicomWriteOptions options;
  options.bits_stored = 12;  // Written sign-extended to 16 bits.
  options.is_signed = true;
  const std::string path = Write("s12.dcm", Grey(1, 4, {-2048, 2047, 0, -1}), options);
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, Native(1, 4)));
  EXPECT_TRUE(image.facts.is_signed);
  EXPECT_THAT(image.pixels, ElementsAre(0, 255, Round255(2048 / 4095.0), Round255(2047 / 4095.0)));
  options.bits_stored = 16;
  const std::string path16 = Write("s16.dcm", Grey(1, 3, {-32768, 32767, 0}), options);
  EXPECT_THAT(Read(path16, Native(1, 3)), ElementsAre(0, 255, Round255(32768 / 65535.0)));
}

TEST_F(DicomImageTest, RescaleThenWindow) {
  DicomWriteOptions options;
  options.bits_stored = 12;
  options.rescale_slope = 2;
  options.rescale_intercept = -1024;
  options.window_center = 0;
  options.window_width = 401;
  // Hounsfield-like x = 2v - 1024; PS3.3 C.11.2.1.2.1 linear window:
  // y = ((x - (c - 0.5)) / (w - 1) + 0.5), clamped to [0, 1].
  const std::string path = Write("w.dcm", Grey(1, 6, {412, 512, 562, 612, 0, 4095}), options);
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, Native(1, 6)));
  auto window = [](double x) { return Round255(std::clamp((x + 0.5) / 400.0 + 0.5, 0.0, 1.0)); };
  EXPECT_THAT(image.pixels, ElementsAre(window(-200), window(0), window(100), window(200), 0, 255));
  EXPECT_THAT(image.pixels, ElementsAre(0, 128, 192, 255, 0, 255));
  EXPECT_EQ(image.facts.voi, "window");
}

TEST_F(DicomImageTest, NegativeRescaleSlopeInvertsTheRange) {
  DicomWriteOptions options;
  options.rescale_slope = -1;
  options.rescale_intercept = 100;
  const std::string path = Write("neg.dcm", Grey(1, 3, {0, 255, 100}), options);
  // x = 100 - v spans -155..100; v = 0 is the brightest.
  EXPECT_THAT(Read(path, Native(1, 3)), ElementsAre(255, 0, Round255(155 / 255.0)));
}

TEST_F(DicomImageTest, VoiLutSequenceMapsThroughItsData) {
  DicomWriteOptions options;
  options.voi_lut = DicomLut{/*first_mapped=*/10, /*bits=*/12, {0, 4095, 1000}};
  options.window_center = 128;  // The LUT takes precedence.
  options.window_width = 2;
  const std::string path = Write("voi.dcm", Grey(1, 4, {5, 10, 11, 200}), options);
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, Native(1, 4)));
  EXPECT_THAT(image.pixels, ElementsAre(0, 0, 255, Round255(1000 / 4095.0)));
  EXPECT_EQ(image.facts.voi, "voi_lut");
}

TEST_F(DicomImageTest, ModalityLutSequenceReplacesRescale) {
  DicomWriteOptions options;
  options.modality_lut = DicomLut{/*first_mapped=*/0, /*bits=*/16, {1000, 0, 500, 250}};
  options.rescale_slope = 100;  // Ignored: the LUT wins.
  const std::string path = Write("mlut.dcm", Grey(1, 4, {0, 1, 2, 3}), options);
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, Native(1, 4)));
  // Range over the LUT's outputs 0..1000.
  EXPECT_THAT(image.pixels, ElementsAre(255, 0, Round255(0.5), Round255(0.25)));
  EXPECT_TRUE(image.facts.modality_lut);
}

TEST_F(DicomImageTest, MonochromeOneEqualsItsMonochromeTwoTwin) {
  DicomWriteOptions mono2;
  mono2.bits_stored = 12;
  DicomWriteOptions mono1 = mono2;
  mono1.monochrome1 = true;
  std::vector<int32_t> values, inverted;
  for (int32_t i = 0; i < 64; ++i) {
    values.push_back((i * 997) % 4096);
    inverted.push_back(4095 - values.back());
  }
  const std::string path2 = Write("m2.dcm", Grey(8, 8, values), mono2);
  const std::string path1 = Write("m1.dcm", Grey(8, 8, inverted), mono1);
  DicomReadOptions small;
  small.height = 4;
  small.width = 4;
  EXPECT_EQ(Read(path1, Native(8, 8)), Read(path2, Native(8, 8)));
  EXPECT_EQ(Read(path1, small), Read(path2, small));
  // Stored 0 in MONOCHROME1 is white.
  const std::string white = Write("white.dcm", Grey(1, 2, {0, 4095}), mono1);
  EXPECT_THAT(Read(white, Native(1, 2)), ElementsAre(255, 0));
}

TEST_F(DicomImageTest, CompressedSyntaxesDecodeToTheSameValues) {
  std::vector<int32_t> values;
  for (int32_t i = 0; i < 16 * 16; ++i) values.push_back((i * 37) % 4096);
  DicomWriteOptions options;
  options.bits_stored = 12;
  const std::vector<uint8_t> expected =
      Read(Write("native.dcm", Grey(16, 16, values), options), Native(16, 16));
  for (const auto& [syntax, name] : std::vector<std::pair<DicomTransferSyntax, std::string>>{
           {DicomTransferSyntax::kRle, "1.2.840.10008.1.2.5"},
           {DicomTransferSyntax::kJpegLossless, "1.2.840.10008.1.2.4.70"},
           {DicomTransferSyntax::kJpegLsLossless, "1.2.840.10008.1.2.4.80"},
           {DicomTransferSyntax::kImplicitVrLittleEndian, "1.2.840.10008.1.2"}}) {
    options.transfer_syntax = syntax;
    const std::string path = Write(name + ".dcm", Grey(16, 16, values), options);
    ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, Native(16, 16)));
    EXPECT_EQ(image.facts.transfer_syntax_uid, name);
    EXPECT_EQ(image.pixels, expected) << name;
  }
}

TEST_F(DicomImageTest, MultiFrameNeedsTheFirstFrameOption) {
  DicomWriteOptions options;
  for (DicomTransferSyntax syntax :
       {DicomTransferSyntax::kExplicitVrLittleEndian, DicomTransferSyntax::kJpegLsLossless}) {
    options.transfer_syntax = syntax;
    const std::string path =
        Write("multi.dcm", Grey(1, 2, {10, 20, 200, 250}, /*frames=*/2), options);
    absl::StatusOr<PreprocessedDicom> refused = ReadDicomImage(path, Native(1, 2));
    EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 frames")));
    EXPECT_EQ(DicomRefusalOf(refused.status()), DicomRefusal::kMultiFrame);
    DicomReadOptions first = Native(1, 2);
    first.first_frame_only = true;
    ASSERT_OK_AND_ASSIGN(PreprocessedDicom image, ReadDicomImage(path, first));
    EXPECT_THAT(image.pixels, ElementsAre(10, 20));
    EXPECT_TRUE(image.facts.took_first_frame);
    EXPECT_EQ(image.facts.frames, 2);
  }
}

TEST_F(DicomImageTest, RefusalsNameTheFileAndTheReason) {
  DicomWriteOptions no_pixels;
  no_pixels.write_pixel_data = false;
  const std::string empty = Write("empty.dcm", Grey(2, 2, {0, 0, 0, 0}), no_pixels);
  absl::StatusOr<PreprocessedDicom> result = ReadDicomImage(empty);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr(empty + ": has no pixel data")));
  EXPECT_EQ(DicomRefusalOf(result.status()), DicomRefusal::kNoPixelData);

  const std::string text = dir_.Join("notes.dcm");
  std::ofstream(text) << std::string(300, 'x');
  result = ReadDicomImage(text);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a DICOM file")));
  EXPECT_EQ(DicomRefusalOf(result.status()), DicomRefusal::kNotDicom);

  result = ReadDicomImage(dir_.Join("missing.dcm"));
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.dcm")));
  EXPECT_EQ(DicomRefusalOf(result.status()), DicomRefusal::kUnreadable);
  EXPECT_EQ(DicomRefusalOf(absl::InvalidArgumentError("other")), DicomRefusal::kNone);
}

TEST_F(DicomImageTest, TruncatedFilesAreRefused) {
  DicomWriteOptions options;
  options.bits_stored = 16;
  std::vector<int32_t> values(64 * 64, 1234);
  for (DicomTransferSyntax syntax :
       {DicomTransferSyntax::kExplicitVrLittleEndian, DicomTransferSyntax::kJpegLsLossless}) {
    options.transfer_syntax = syntax;
    const std::string path = Write("whole.dcm", Grey(64, 64, values), options);
    const uintmax_t size = fs::file_size(path);
    for (uintmax_t keep : {size - 100, size / 2, uintmax_t{200}}) {
      const std::string cut = dir_.Join("cut.dcm");
      fs::copy_file(path, cut, fs::copy_options::overwrite_existing);
      fs::resize_file(cut, keep);
      absl::StatusOr<PreprocessedDicom> result = ReadDicomImage(cut, Native(64, 64));
      EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(cut)))
          << "kept " << keep << " of " << size;
      EXPECT_EQ(DicomRefusalOf(result.status()), DicomRefusal::kTruncated)
          << "kept " << keep << ": " << result.status();
    }
  }
}

TEST_F(DicomImageTest, AspectPreservingPaddingCentresTheImage) {
  // 4 rows x 8 columns of 255 into 8x8: scale 1, rows 2..5 hold the image.
  const std::string wide = Write("wide.dcm", Grey(4, 8, std::vector<int32_t>(32, 255)));
  const std::vector<uint8_t> pixels = Read(wide, Native(8, 8));
  for (int y = 0; y < 8; ++y) {
    const std::vector<uint8_t> row(pixels.begin() + 8 * y, pixels.begin() + 8 * y + 8);
    EXPECT_THAT(row, Each(y >= 2 && y < 6 ? 255 : 0)) << "row " << y;
  }
  // 2x4 shrunk into 2x2 by area: each target pixel averages a 1x2 box...
  // no: scale 0.5 gives 1x2 placed at row 0 (odd padding row at the bottom).
  const std::string small = Write("small.dcm", Grey(2, 4, {0, 10, 20, 30, 40, 50, 60, 70}));
  EXPECT_THAT(Read(small, Native(2, 2)), ElementsAre(25, 45, 0, 0));
  // 2x2 enlarged into 4x4, bilinear with clamped edges.
  const std::string tiny = Write("tiny.dcm", Grey(2, 2, {0, 100, 100, 200}));
  EXPECT_THAT(Read(tiny, Native(4, 4)),
              ElementsAre(0, 25, 75, 100, 25, 50, 100, 125, 75, 100, 150, 175, 100, 125, 175, 200));
}

TEST_F(DicomImageTest, ColourBecomesLumaAndGreyReplicates) {
  DicomPixels rgb;
  rgb.rows = 1;
  rgb.columns = 2;
  rgb.samples_per_pixel = 3;
  rgb.values = {255, 0, 0, 10, 200, 30};
  const std::string path = Write("rgb.dcm", rgb);
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom grey, ReadDicomImage(path, Native(1, 2)));
  EXPECT_THAT(grey.pixels, ElementsAre(76, 124));  // 0.299*255; 2.99+117.4+3.42.
  EXPECT_TRUE(grey.facts.converted_to_grey);
  DicomReadOptions three = Native(1, 2);
  three.channels = 3;
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom colour, ReadDicomImage(path, three));
  EXPECT_THAT(colour.pixels, ElementsAre(255, 0, 0, 10, 200, 30));
  const std::string mono = Write("mono.dcm", Grey(1, 2, {7, 9}));
  ASSERT_OK_AND_ASSIGN(PreprocessedDicom replicated, ReadDicomImage(mono, three));
  EXPECT_THAT(replicated.pixels, ElementsAre(7, 7, 7, 9, 9, 9));
  EXPECT_TRUE(replicated.facts.replicated_to_rgb);
}

TEST_F(DicomImageTest, FactsOnlyReadDoesNotDecode) {
  DicomWriteOptions options;
  options.modality = "CR";
  options.monochrome1 = true;
  options.bits_stored = 12;
  options.sop_instance_uid = "1.2.3.4.5";
  options.transfer_syntax = DicomTransferSyntax::kJpegLsLossless;
  const std::string path = Write("cr.dcm", Grey(3, 5, std::vector<int32_t>(45, 9), 3), options);
  ASSERT_OK_AND_ASSIGN(DicomFacts facts, ReadDicomFacts(path));
  EXPECT_EQ(facts.modality, "CR");
  EXPECT_EQ(facts.photometric_interpretation, "MONOCHROME1");
  EXPECT_EQ(facts.sop_instance_uid, "1.2.3.4.5");
  EXPECT_EQ(facts.bits_stored, 12);
  EXPECT_EQ(facts.bits_allocated, 16);
  EXPECT_EQ(facts.rows, 3);
  EXPECT_EQ(facts.columns, 5);
  EXPECT_EQ(facts.frames, 3);
  EXPECT_EQ(facts.transfer_syntax, "JPEG-LS Lossless");
}

TEST_F(DicomImageTest, RejectsBadGeometry) {
  DicomReadOptions options;
  options.channels = 2;
  EXPECT_THAT(ReadDicomImage("x.dcm", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("channels 1 or 3")));
}

}  // namespace
}  // namespace fedmi

namespace fedmi {
namespace review {

// Replaces the first occurrence of `from` in the file at `path` by `to`.
bool PatchBytes(const std::string& path, const std::string& from, const std::string& to) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = bytes.find(from);
  if (at == std::string::npos) return false;
  bytes.replace(at, from.size(), to);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return true;
}

std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

// Review finding: the native length check computes frame_bytes * frames in
// uint64_t, which wraps. Rows 60104 x Columns 65362 RGB and NumberOfFrames
// 1565199712 need 2^64 + 512 bytes: the check sees 512, passes with 1152
// bytes of pixel data, and ColourPixels then allocates 3.9 GB and reads
// 11.8 GB from a 1152-byte buffer.
TEST(DicomImageReviewTest, FrameCountOverflowIsRefusedNotReadOutOfBounds) {
  ScratchDir dir;
  const std::string path = dir.Join("wrap.dcm");
  DicomPixels rgb;
  rgb.rows = 16;
  rgb.columns = 12;
  rgb.frames = 2;
  rgb.samples_per_pixel = 3;
  rgb.values.assign(16 * 12 * 3 * 2, 100);
  ASSERT_THAT(WriteDicomFile(path, rgb), IsOk());
  ASSERT_TRUE(PatchBytes(path, Bytes({0x28, 0, 0x10, 0, 'U', 'S', 2, 0, 16, 0}),
                         Bytes({0x28, 0, 0x10, 0, 'U', 'S', 2, 0, 0xC8, 0xEA})));  // 60104
  ASSERT_TRUE(PatchBytes(path, Bytes({0x28, 0, 0x11, 0, 'U', 'S', 2, 0, 12, 0}),
                         Bytes({0x28, 0, 0x11, 0, 'U', 'S', 2, 0, 0x52, 0xFF})));  // 65362
  ASSERT_TRUE(PatchBytes(path, Bytes({0x28, 0, 0x08, 0, 'I', 'S', 2, 0}) + "2 ",
                         Bytes({0x28, 0, 0x08, 0, 'I', 'S', 10, 0}) + "1565199712"));
  absl::StatusOr<DicomFacts> facts = ReadDicomFacts(path);
  ASSERT_THAT(facts, IsOk());
  ASSERT_EQ(facts->rows, 60104);
  ASSERT_EQ(facts->frames, 1565199712);
  DicomReadOptions options;
  options.first_frame_only = true;
  // Refused from the header, before anything is allocated or read.
  EXPECT_EQ(DicomRefusalOf(ReadDicomImage(path, options).status()),
            DicomRefusal::kUnsupportedPixels);
}

// Review finding: for encapsulated pixel data the decode buffer is sized
// from the header alone (getUncompressedFrameSize) before anything is
// decoded, so a few-hundred-byte RLE file declaring 65535 x 65535 makes
// the site zero-fill 4 GiB per decoding thread; when that fails the
// uncaught std::bad_alloc ends the daemon.
TEST(DicomImageReviewTest, HugeDeclaredSizeOfACompressedFrameIsRefused) {
  ScratchDir dir;
  const std::string path = dir.Join("bomb.dcm");
  DicomWriteOptions rle;
  rle.transfer_syntax = DicomTransferSyntax::kRle;
  ASSERT_THAT(WriteDicomFile(path, Grey(16, 16, std::vector<int32_t>(256, 7)), rle), IsOk());
  ASSERT_TRUE(PatchBytes(path, Bytes({0x28, 0, 0x10, 0, 'U', 'S', 2, 0, 16, 0}),
                         Bytes({0x28, 0, 0x10, 0, 'U', 'S', 2, 0, 0xFF, 0xFF})));
  ASSERT_TRUE(PatchBytes(path, Bytes({0x28, 0, 0x11, 0, 'U', 'S', 2, 0, 16, 0}),
                         Bytes({0x28, 0, 0x11, 0, 'U', 'S', 2, 0, 0xFF, 0xFF})));
  absl::StatusOr<DicomFacts> facts = ReadDicomFacts(path);
  ASSERT_THAT(facts, IsOk());
  ASSERT_EQ(facts->rows, 65535);
  ASSERT_EQ(fs::file_size(path) < 4096, true);
  EXPECT_EQ(DicomRefusalOf(ReadDicomImage(path, DicomReadOptions()).status()),
            DicomRefusal::kUnsupportedPixels);
}

}  // namespace review
namespace review {

// Review finding: RescaleSlope is only checked against 0, so a slope of NaN
// or infinity (DS "NaN"/"inf", which DCMTK parses) makes every modality
// value non-finite; the range VOI then maps every pixel to 0 and the file
// is accepted as an all-black training image instead of refused.
TEST(DicomImageReviewTest, NonFiniteRescaleIsRefusedNotAnAllBlackImage) {
  ScratchDir dir;
  for (double slope : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    DicomWriteOptions options;
    options.bits_stored = 12;
    options.rescale_slope = slope;
    options.rescale_intercept = 0;
    const std::string path = dir.Join("slope.dcm");
    ASSERT_THAT(WriteDicomFile(path, Grey(2, 2, {0, 1000, 2000, 4095}), options), IsOk());
    DicomReadOptions native;
    native.height = native.width = 2;
    absl::StatusOr<PreprocessedDicom> image = ReadDicomImage(path, native);
    if (image.ok()) {
      ADD_FAILURE() << "slope " << slope << " accepted; pixels " << int(image->pixels[0]) << " "
                    << int(image->pixels[1]) << " " << int(image->pixels[2]) << " "
                    << int(image->pixels[3]);
    }
  }
}

// Review finding: WindowWidth 1 (allowed: the code accepts width >= 1)
// with LINEAR divides by width - 1 = 0; a value exactly at c - 0.5 gives
// 0 / 0 = NaN, which lround turns into an arbitrary byte. PS3.3
// C.11.2.1.2.1 maps x <= c - 0.5 to the minimum, so under MONOCHROME1 that
// pixel must be 255 (white); it comes out 0.
TEST(DicomImageReviewTest, WindowWidthOneMapsTheEdgeValueToTheMinimum) {
  ScratchDir dir;
  DicomWriteOptions options;
  options.window_center = 100.5;
  options.window_width = 1;
  options.monochrome1 = true;
  const std::string path = dir.Join("w1.dcm");
  ASSERT_THAT(WriteDicomFile(path, Grey(1, 4, {99, 100, 101, 102}), options), IsOk());
  DicomReadOptions native;
  native.height = 1;
  native.width = 4;
  absl::StatusOr<PreprocessedDicom> image = ReadDicomImage(path, native);
  ASSERT_THAT(image, IsOk());
  EXPECT_THAT(image->pixels, ElementsAre(255, 255, 0, 0));
}

}  // namespace review
}  // namespace fedmi
