#include "common/data/dicom_writer.h"

#include <fstream>
#include <iterator>
#include <string>

#include "common/data/dicom_image.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

DicomPixels Square(int32_t value) {
  DicomPixels pixels;
  pixels.rows = 2;
  pixels.columns = 2;
  pixels.values.assign(4, value);
  return pixels;
}

TEST(DicomWriterTest, WritesIdentifyingAttributesLikeARealExport) {
  ScratchDir dir;
  DicomWriteOptions options;
  options.patient_name = "Roe^Richard";
  options.patient_id = "MRN-77";
  options.sop_instance_uid = "1.2.826.0.1.3680043.2.1143.42";
  const std::string path = dir.Join("id.dcm");
  ASSERT_THAT(WriteDicomFile(path, Square(5), options), IsOk());
  const std::string bytes = FileBytes(path);
  EXPECT_EQ(bytes.substr(128, 4), "DICM");
  for (const std::string& value :
       {options.patient_name, options.patient_id, options.study_date, options.patient_birth_date,
        options.accession_number, options.institution_name}) {
    EXPECT_THAT(bytes, HasSubstr(value));
  }
  ASSERT_OK_AND_ASSIGN(DicomFacts facts, ReadDicomFacts(path));
  EXPECT_EQ(facts.sop_instance_uid, options.sop_instance_uid);
}

TEST(DicomWriterTest, GeneratesDistinctUidsWhenNoneGiven) {
  ScratchDir dir;
  ASSERT_THAT(WriteDicomFile(dir.Join("a.dcm"), Square(1)), IsOk());
  ASSERT_THAT(WriteDicomFile(dir.Join("b.dcm"), Square(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(DicomFacts a, ReadDicomFacts(dir.Join("a.dcm")));
  ASSERT_OK_AND_ASSIGN(DicomFacts b, ReadDicomFacts(dir.Join("b.dcm")));
  EXPECT_FALSE(a.sop_instance_uid.empty());
  EXPECT_NE(a.sop_instance_uid, b.sop_instance_uid);
}

TEST(DicomWriterTest, RefusesValuesOutsideBitsStored) {
  ScratchDir dir;
  DicomWriteOptions options;
  options.bits_stored = 12;
  EXPECT_THAT(WriteDicomFile(dir.Join("x.dcm"), Square(4096), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside 0..4095")));
  options.is_signed = true;
  EXPECT_THAT(WriteDicomFile(dir.Join("x.dcm"), Square(-2049), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside -2048..2047")));
  DicomPixels short_pixels = Square(0);
  short_pixels.values.pop_back();
  EXPECT_THAT(WriteDicomFile(dir.Join("x.dcm"), short_pixels),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need 4 values but have 3")));
}

}  // namespace
}  // namespace fedmi
