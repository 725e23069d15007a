// Writing grey (or 8-bit RGB) pixels as a DICOM file: what tests, the
// integration tests and conversion tools use to make DICOM data that looks
// like a hospital's export, identifying attributes included.
//
// Thread-safe: DCMTK's encoders are registered once per process on first
// use, when DCMTK's own logging is also silenced (fatal only); each call
// writes its own file.
#ifndef FEDMI_COMMON_DATA_DICOM_WRITER_H_
#define FEDMI_COMMON_DATA_DICOM_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace fedmi {

enum class DicomTransferSyntax {
  kExplicitVrLittleEndian,  // 1.2.840.10008.1.2.1, native pixels.
  kImplicitVrLittleEndian,  // 1.2.840.10008.1.2, native pixels.
  kRle,                     // 1.2.840.10008.1.2.5, RLE Lossless.
  kJpegLossless,            // 1.2.840.10008.1.2.4.70, JPEG Lossless SV1.
  kJpegLsLossless,          // 1.2.840.10008.1.2.4.80, JPEG-LS Lossless.
};

// A LUT as DICOM stores it: LUTDescriptor = (data.size(), first_mapped,
// bits), LUTData = data (US/OW, 16 bits per entry).
struct DicomLut {
  int64_t first_mapped = 0;
  int64_t bits = 16;
  std::vector<uint16_t> data;
};

struct DicomWriteOptions {
  // PhotometricInterpretation MONOCHROME1 (minimum = white) instead of
  // MONOCHROME2. Ignored for RGB.
  bool monochrome1 = false;
  // BitsStored (HighBit = bits_stored - 1). 8 writes BitsAllocated 8 (OB),
  // anything in 9..16 BitsAllocated 16 (OW). RGB must be 8.
  int64_t bits_stored = 8;
  // PixelRepresentation 1: values are two's complement in bits_stored bits.
  bool is_signed = false;
  // RescaleSlope / RescaleIntercept (and RescaleType "US"), when set.
  std::optional<double> rescale_slope;
  std::optional<double> rescale_intercept;
  // WindowCenter / WindowWidth (one value each), and VOILUTFunction when
  // not empty ("LINEAR", "LINEAR_EXACT", "SIGMOID").
  std::optional<double> window_center;
  std::optional<double> window_width;
  std::string voi_lut_function;
  // ModalityLUTSequence / VOILUTSequence with one item each, when set.
  std::optional<DicomLut> modality_lut;
  std::optional<DicomLut> voi_lut;
  DicomTransferSyntax transfer_syntax = DicomTransferSyntax::kExplicitVrLittleEndian;
  // Without pixel data the file still declares Rows, Columns and the bit
  // layout, like a structured report or a broken export.
  bool write_pixel_data = true;
  // Modality; "CR" makes the SOP class Computed Radiography Image Storage,
  // anything else Secondary Capture Image Storage.
  std::string modality = "OT";
  // Identifying attributes, written as given. An empty UID is generated
  // (DCMTK's dcmGenerateUniqueIdentifier); StudyInstanceUID and
  // SeriesInstanceUID likewise.
  std::string patient_name = "Doe^Jane";
  std::string patient_id = "PID-0001";
  std::string patient_birth_date = "19700101";
  std::string study_date = "20260101";
  std::string accession_number = "ACC-0001";
  std::string institution_name = "Fedmi Test Hospital";
  std::string sop_instance_uid;
  std::string study_instance_uid;
  std::string series_instance_uid;
};

// Pixels to write: frames x rows x columns x samples (1 grey or 3 RGB),
// channel-last, frame after frame. Each value is a stored value: within
// 0..2^bits_stored-1, or -2^(bits_stored-1)..2^(bits_stored-1)-1 if signed.
struct DicomPixels {
  int64_t rows = 0;
  int64_t columns = 0;
  int64_t frames = 1;
  int64_t samples_per_pixel = 1;
  std::vector<int32_t> values;
};

// Writes `pixels` to `path` (overwriting it) as a DICOM Part 10 file with
// `options`. NumberOfFrames is written only when frames > 1. Errors:
// InvalidArgument for sizes that do not match, values out of range, bits
// outside 1..16, RGB with bits other than 8 or MONOCHROME1; Internal when
// DCMTK cannot encode or write the file (the message says which).
absl::Status WriteDicomFile(const std::string& path, const DicomPixels& pixels,
                            const DicomWriteOptions& options = {});

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DICOM_WRITER_H_
