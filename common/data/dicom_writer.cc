#include "common/data/dicom_writer.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "dcmtk/config/osconfig.h"  // Must come before any other DCMTK header.
#include "dcmtk/dcmdata/dcdatset.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcrlerp.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcvrobow.h"
#include "dcmtk/dcmdata/dcvrus.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"
#include "dcmtk/oflog/oflog.h"

namespace fedmi {
namespace {

void RegisterEncodersOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);  // Failures come back as statuses.
    DJEncoderRegistration::registerCodecs();
    // DCMTK 3.6.7's "cooked" JPEG-LS encoder writes one byte past its
    // buffer (DJLSEncoderBase::fixPaddingIfNecessary, found with valgrind:
    // the heap corruption crashed the test binary at exit). The raw path
    // encodes the stored values as they are, which is what tests want.
    DJLSEncoderRegistration::registerCodecs(
        /*jpls_t1=*/0, /*jpls_t2=*/0, /*jpls_t3=*/0, /*jpls_reset=*/0,
        /*preferCookedEncoding=*/OFFalse, /*fragmentSize=*/0, /*createOffsetTable=*/OFTrue,
        EJLSUC_default, /*convertToSC=*/OFFalse, DJLSCodecParameter::interleaveDefault,
        /*useFFbitstreamPadding=*/OFFalse);
    DcmRLEEncoderRegistration::registerCodecs();
  });
}

E_TransferSyntax ToDcmtk(DicomTransferSyntax syntax) {
  switch (syntax) {
    case DicomTransferSyntax::kExplicitVrLittleEndian:
      return EXS_LittleEndianExplicit;
    case DicomTransferSyntax::kImplicitVrLittleEndian:
      return EXS_LittleEndianImplicit;
    case DicomTransferSyntax::kRle:
      return EXS_RLELossless;
    case DicomTransferSyntax::kJpegLossless:
      return EXS_JPEGProcess14SV1;
    case DicomTransferSyntax::kJpegLsLossless:
      return EXS_JPEGLSLossless;
  }
  return EXS_LittleEndianExplicit;
}

std::string NewUid() {
  char uid[100];
  return dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
}

absl::Status Check(const OFCondition& condition, const std::string& path, const char* what) {
  if (condition.good()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("cannot ", what, " for DICOM file ", path, ": ", condition.text()));
}

absl::Status PutLut(DcmDataset& dataset, const DcmTagKey& sequence, const DicomLut& lut,
                    const std::string& path) {
  DcmItem* item = nullptr;
  if (absl::Status s = Check(dataset.findOrCreateSequenceItem(sequence, item, -2), path, "add LUT");
      !s.ok()) {
    return s;
  }
  // The dictionary leaves both VRs open (US or SS, US or OW): say which.
  const Uint16 descriptor[3] = {static_cast<Uint16>(lut.data.size() == 65536 ? 0 : lut.data.size()),
                                static_cast<Uint16>(lut.first_mapped),
                                static_cast<Uint16>(lut.bits)};
  auto* descriptor_element = new DcmUnsignedShort(DcmTag(DCM_LUTDescriptor, EVR_US));
  descriptor_element->putUint16Array(descriptor, 3);
  if (absl::Status s = Check(item->insert(descriptor_element, true), path, "write LUTDescriptor");
      !s.ok()) {
    return s;
  }
  auto* data = new DcmOtherByteOtherWord(DcmTag(DCM_LUTData, EVR_OW));
  data->putUint16Array(lut.data.data(), static_cast<unsigned long>(lut.data.size()));
  return Check(item->insert(data, true), path, "write LUTData");
}

absl::Status CheckInput(const DicomPixels& pixels, const DicomWriteOptions& options) {
  if (pixels.rows < 1 || pixels.columns < 1 || pixels.frames < 1 || pixels.rows > 65535 ||
      pixels.columns > 65535 || (pixels.samples_per_pixel != 1 && pixels.samples_per_pixel != 3)) {
    return absl::InvalidArgumentError(
        absl::StrCat("DICOM pixels of ", pixels.frames, " frame(s) of ", pixels.rows, "x",
                     pixels.columns, "x", pixels.samples_per_pixel, " are invalid"));
  }
  if (options.bits_stored < 1 || options.bits_stored > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("bits stored ", options.bits_stored, " is outside 1..16"));
  }
  if (pixels.samples_per_pixel == 3 &&
      (options.bits_stored != 8 || options.is_signed || options.monochrome1)) {
    return absl::InvalidArgumentError("RGB pixels must be unsigned 8-bit");
  }
  const int64_t expected = pixels.frames * pixels.rows * pixels.columns * pixels.samples_per_pixel;
  if (static_cast<int64_t>(pixels.values.size()) != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("DICOM pixels need ", expected, " values but have ", pixels.values.size()));
  }
  const int64_t low = options.is_signed ? -(int64_t{1} << (options.bits_stored - 1)) : 0;
  const int64_t high = options.is_signed ? (int64_t{1} << (options.bits_stored - 1)) - 1
                                         : (int64_t{1} << options.bits_stored) - 1;
  for (size_t i = 0; i < pixels.values.size(); ++i) {
    if (pixels.values[i] < low || pixels.values[i] > high) {
      return absl::InvalidArgumentError(absl::StrCat("DICOM pixel value ", pixels.values[i], " at ",
                                                     i, " is outside ", low, "..", high));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteDicomFile(const std::string& path, const DicomPixels& pixels,
                            const DicomWriteOptions& options) {
  if (absl::Status input = CheckInput(pixels, options); !input.ok()) return input;
  RegisterEncodersOnce();
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  const bool rgb = pixels.samples_per_pixel == 3;
  const int64_t bits_allocated = options.bits_stored <= 8 ? 8 : 16;
  const bool cr = options.modality == "CR";
  const std::string sop_instance =
      options.sop_instance_uid.empty() ? NewUid() : options.sop_instance_uid;
  const std::string study =
      options.study_instance_uid.empty() ? NewUid() : options.study_instance_uid;
  const std::string series =
      options.series_instance_uid.empty() ? NewUid() : options.series_instance_uid;
  const std::pair<DcmTagKey, std::string> strings[] = {
      {DCM_SOPClassUID,
       cr ? UID_ComputedRadiographyImageStorage : UID_SecondaryCaptureImageStorage},
      {DCM_SOPInstanceUID, sop_instance},
      {DCM_StudyInstanceUID, study},
      {DCM_SeriesInstanceUID, series},
      {DCM_Modality, options.modality},
      {DCM_PatientName, options.patient_name},
      {DCM_PatientID, options.patient_id},
      {DCM_PatientBirthDate, options.patient_birth_date},
      {DCM_StudyDate, options.study_date},
      {DCM_AccessionNumber, options.accession_number},
      {DCM_InstitutionName, options.institution_name},
      {DCM_PhotometricInterpretation, rgb                   ? "RGB"
                                      : options.monochrome1 ? "MONOCHROME1"
                                                            : "MONOCHROME2"},
  };
  for (const auto& [tag, value] : strings) {
    if (absl::Status s = Check(ds.putAndInsertString(tag, value.c_str()), path, "write attribute");
        !s.ok()) {
      return s;
    }
  }
  if (!cr) ds.putAndInsertString(DCM_ConversionType, "WSD");
  const std::pair<DcmTagKey, int64_t> numbers[] = {
      {DCM_Rows, pixels.rows},
      {DCM_Columns, pixels.columns},
      {DCM_SamplesPerPixel, pixels.samples_per_pixel},
      {DCM_BitsAllocated, bits_allocated},
      {DCM_BitsStored, options.bits_stored},
      {DCM_HighBit, options.bits_stored - 1},
      {DCM_PixelRepresentation, options.is_signed ? 1 : 0},
  };
  for (const auto& [tag, value] : numbers) {
    ds.putAndInsertUint16(tag, static_cast<Uint16>(value));
  }
  if (rgb) ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  if (pixels.frames > 1) {
    ds.putAndInsertString(DCM_NumberOfFrames, absl::StrCat(pixels.frames).c_str());
  }
  if (options.rescale_slope || options.rescale_intercept) {
    ds.putAndInsertString(DCM_RescaleSlope,
                          absl::StrCat(options.rescale_slope.value_or(1)).c_str());
    ds.putAndInsertString(DCM_RescaleIntercept,
                          absl::StrCat(options.rescale_intercept.value_or(0)).c_str());
    ds.putAndInsertString(DCM_RescaleType, "US");
  }
  if (options.window_center && options.window_width) {
    ds.putAndInsertString(DCM_WindowCenter, absl::StrCat(*options.window_center).c_str());
    ds.putAndInsertString(DCM_WindowWidth, absl::StrCat(*options.window_width).c_str());
  }
  if (!options.voi_lut_function.empty()) {
    ds.putAndInsertString(DCM_VOILUTFunction, options.voi_lut_function.c_str());
  }
  if (options.modality_lut) {
    if (absl::Status s = PutLut(ds, DCM_ModalityLUTSequence, *options.modality_lut, path); !s.ok())
      return s;
  }
  if (options.voi_lut) {
    if (absl::Status s = PutLut(ds, DCM_VOILUTSequence, *options.voi_lut, path); !s.ok()) return s;
  }
  if (options.write_pixel_data) {
    OFCondition put;
    if (bits_allocated == 8) {
      std::vector<Uint8> bytes(pixels.values.begin(), pixels.values.end());
      put = ds.putAndInsertUint8Array(DCM_PixelData, bytes.data(),
                                      static_cast<unsigned long>(bytes.size()));
    } else {
      // Two's complement in all 16 bits: readers mask to BitsStored.
      std::vector<Uint16> words(pixels.values.size());
      for (size_t i = 0; i < words.size(); ++i) words[i] = static_cast<Uint16>(pixels.values[i]);
      put = ds.putAndInsertUint16Array(DCM_PixelData, words.data(),
                                       static_cast<unsigned long>(words.size()));
    }
    if (absl::Status s = Check(put, path, "write pixel data"); !s.ok()) return s;
  }
  const E_TransferSyntax xfer = ToDcmtk(options.transfer_syntax);
  if (options.write_pixel_data && DcmXfer(xfer).isEncapsulated()) {
    const DJ_RPLossless jpeg_lossless(/*predictor=*/1, /*point transform=*/0);
    const DJLSRepresentationParameter jpeg_ls(/*nearlosslessDeviation=*/0,
                                              /*losslessProcess=*/OFTrue);
    const DcmRLERepresentationParameter rle;
    const DcmRepresentationParameter* parameters =
        xfer == EXS_RLELossless      ? static_cast<const DcmRepresentationParameter*>(&rle)
        : xfer == EXS_JPEGLSLossless ? static_cast<const DcmRepresentationParameter*>(&jpeg_ls)
                                     : &jpeg_lossless;
    if (absl::Status s = Check(ds.chooseRepresentation(xfer, parameters), path, "compress pixels");
        !s.ok()) {
      return s;
    }
    if (!ds.canWriteXfer(xfer)) {
      return absl::InternalError(
          absl::StrCat("cannot encode DICOM file ", path, " as ", DcmXfer(xfer).getXferName()));
    }
  }
  return Check(file.saveFile(path.c_str(), xfer), path, "save");
}

}  // namespace fedmi
