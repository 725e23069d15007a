#include "common/data/dicom_export.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/csv.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/data/dicom_writer.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

constexpr DicomEncoding kAllEncodings[] = {DicomEncoding::kPlain, DicomEncoding::kMonochrome1,
                                           DicomEncoding::kRescaled12Bit, DicomEncoding::kJpegLs,
                                           DicomEncoding::kRle};

// The stored values and options that encode `image` (8-bit grey) as
// `encoding`.
void Encode(const uint8_t* image, int64_t pixels, DicomEncoding encoding, DicomPixels* out,
            DicomWriteOptions* options) {
  out->values.resize(pixels);
  for (int64_t i = 0; i < pixels; ++i) out->values[i] = image[i];
  switch (encoding) {
    case DicomEncoding::kPlain:
      break;
    case DicomEncoding::kMonochrome1:
      options->monochrome1 = true;
      for (int32_t& value : out->values) value = 255 - value;
      break;
    case DicomEncoding::kRescaled12Bit:
      // Rescaled values are p exactly, and the 12-bit range maps back onto
      // 0..255 within rounding.
      options->bits_stored = 12;
      options->rescale_slope = 1.0 / 16;
      options->rescale_intercept = -0.5;
      for (int32_t& value : out->values) value = value * 16 + 8;
      break;
    case DicomEncoding::kJpegLs:
      options->transfer_syntax = DicomTransferSyntax::kJpegLsLossless;
      break;
    case DicomEncoding::kRle:
      options->transfer_syntax = DicomTransferSyntax::kRle;
      break;
  }
}

}  // namespace

const char* DicomEncodingName(DicomEncoding encoding) {
  switch (encoding) {
    case DicomEncoding::kPlain:
      return "plain";
    case DicomEncoding::kMonochrome1:
      return "monochrome1";
    case DicomEncoding::kRescaled12Bit:
      return "rescaled-12bit";
    case DicomEncoding::kJpegLs:
      return "jpeg-ls";
    case DicomEncoding::kRle:
      return "rle";
  }
  return "unknown";
}

absl::StatusOr<std::vector<DicomEncoding>> ParseDicomEncodings(const std::string& name) {
  if (name == "mixed") return std::vector<DicomEncoding>();
  for (DicomEncoding encoding : kAllEncodings) {
    if (name == DicomEncodingName(encoding)) return std::vector<DicomEncoding>{encoding};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown DICOM encoding '", name,
                   "'; known: plain, monochrome1, rescaled-12bit, jpeg-ls, rle, mixed"));
}

absl::StatusOr<DicomExportReport> ExportAsDicomFolder(const std::map<std::string, ImageSet>& splits,
                                                      const std::string& out_dir,
                                                      const DicomExportOptions& options) {
  const std::vector<DicomEncoding> encodings =
      options.encodings.empty()
          ? std::vector<DicomEncoding>(std::begin(kAllEncodings), std::end(kAllEncodings))
          : options.encodings;
  DicomExportReport report;
  std::string csv = "file,label,split\n";
  int64_t serial = 0;
  for (const auto& [split, images] : splits) {
    if (images.channels != 1) {
      return absl::InvalidArgumentError(absl::StrCat("split ", split, " has ", images.channels,
                                                     " channels; DICOM export writes grey images"));
    }
    const int64_t pixels = images.height * images.width;
    for (int64_t i = 0; i < images.size(); ++i, ++serial) {
      const int64_t label = images.labels[i];
      const std::string class_name =
          label >= 0 && label < static_cast<int64_t>(options.class_names.size())
              ? options.class_names[label]
              : absl::StrCat(label);
      // Zero-padded in one folder per split: the reader's path order is the
      // images' order, so a run on the export shuffles exactly as on them.
      const std::string relative = absl::StrFormat("%s/%06d.dcm", split, i);
      const std::string path = (fs::path(out_dir) / relative).string();
      RETURN_IF_ERROR(Env::Default()->CreateDirs(fs::path(path).parent_path().string()));

      const DicomEncoding encoding = encodings[serial % encodings.size()];
      DicomPixels stored;
      stored.rows = images.height;
      stored.columns = images.width;
      DicomWriteOptions write;
      write.modality = "CR";
      write.patient_name = absl::StrFormat("Synthetic^%s%06d", options.patient_prefix, serial);
      write.patient_id = absl::StrFormat("%s-%06d", options.patient_prefix, serial);
      write.patient_birth_date =
          absl::StrFormat("19%02d%02d%02d", 30 + serial % 70, 1 + serial % 12, 1 + serial % 28);
      write.accession_number = absl::StrFormat("ACC-%s-%06d", options.patient_prefix, serial);
      write.institution_name = "Fedmi Synthetic Hospital";
      Encode(images.pixels.data() + i * pixels, pixels, encoding, &stored, &write);
      if (absl::Status status = WriteDicomFile(path, stored, write); !status.ok()) {
        return absl::Status(status.code(),
                            absl::StrCat("cannot write ", path, ": ", status.message()));
      }
      absl::StrAppend(&csv, CsvField(relative), ",", CsvField(class_name), ",", split, "\n");
      ++report.per_encoding[DicomEncodingName(encoding)];
      ++report.files;
    }
  }
  report.labels_csv = (fs::path(out_dir) / "labels.csv").string();
  RETURN_IF_ERROR(WriteFileAtomically(*Env::Default(), report.labels_csv, csv));
  return report;
}

}  // namespace fedmi
