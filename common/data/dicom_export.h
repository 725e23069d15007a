// Writing labelled 8-bit images as a hospital-style DICOM folder (layout (a)
// of dicom_data.h: .dcm files plus labels.csv with a split column), in the
// encodings real exports use. `fedmi data to-dicom` and the DICOM
// integration test use it to turn PneumoniaMNIST into data that exercises
// every step of the reader.
//
// Each file carries made-up identifying attributes (patient name and ID,
// birth date, accession number, UIDs) distinct per image, so that a test can
// check none of them ever leaves a site.
//
// Thread-safe (no shared state).
#ifndef FEDMI_COMMON_DATA_DICOM_EXPORT_H_
#define FEDMI_COMMON_DATA_DICOM_EXPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/dataset.h"

namespace fedmi {

// How one image is encoded. Each keeps the image recoverable: the reader's
// pipeline gives back the 8-bit pixels (exactly, or within one grey level
// for kRescaled12Bit).
enum class DicomEncoding {
  kPlain,          // MONOCHROME2, 8 bits, explicit VR little endian
  kMonochrome1,    // stored inverted (255 - p): the reader must invert it back
  kRescaled12Bit,  // 12 bits stored, p * 16 + 8, with RescaleSlope 1/16 and RescaleIntercept -0.5
  kJpegLs,         // MONOCHROME2, 8 bits, JPEG-LS lossless
  kRle,            // MONOCHROME2, 8 bits, RLE lossless
};

// "plain", "monochrome1", "rescaled-12bit", "jpeg-ls", "rle"; parsing also
// accepts "mixed" (every encoding in turn), returned as an empty list.
const char* DicomEncodingName(DicomEncoding encoding);
absl::StatusOr<std::vector<DicomEncoding>> ParseDicomEncodings(const std::string& name);

struct DicomExportOptions {
  // Encodings used in turn, image after image; empty: every encoding.
  std::vector<DicomEncoding> encodings;
  // Class names by index for labels.csv; empty: the index itself.
  std::vector<std::string> class_names;
  // Prefixes the made-up patient IDs ("<prefix>-000017"), so that sites'
  // exports do not share IDs.
  std::string patient_prefix = "PAT";
};

struct DicomExportReport {
  int64_t files = 0;
  std::map<std::string, int64_t> per_encoding;  // by DicomEncodingName
  std::string labels_csv;                       // its path
};

// Writes every image of `splits` (split name -> images, grey, 8-bit) as
// `out_dir`/<split>/<row, 6 digits>.dcm and `out_dir`/labels.csv naming each
// file, its label (a class name) and split. Creates out_dir. InvalidArgument for an image
// set with other than 1 channel; WriteDicomFile's errors otherwise, naming
// the file.
absl::StatusOr<DicomExportReport> ExportAsDicomFolder(const std::map<std::string, ImageSet>& splits,
                                                      const std::string& out_dir,
                                                      const DicomExportOptions& options = {});

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DICOM_EXPORT_H_
