#include "common/data/dicom_image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/data/image_geometry.h"
#include "common/data/resize_internal.h"
#include "dcmtk/config/osconfig.h"  // Must come before any other DCMTK header.
#include "dcmtk/dcmdata/dccodec.h"
#include "dcmtk/dcmdata/dcdatset.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"

namespace fedmi {
namespace {

constexpr char kRefusalPayload[] = "type.fedmi.dev/dicom_refusal";

constexpr DicomRefusal kAllRefusals[] = {DicomRefusal::kNotDicom,
                                         DicomRefusal::kNoPixelData,
                                         DicomRefusal::kUnsupportedTransferSyntax,
                                         DicomRefusal::kUnsupportedPixels,
                                         DicomRefusal::kTruncated,
                                         DicomRefusal::kMultiFrame,
                                         DicomRefusal::kUnreadable};

absl::Status Refuse(DicomRefusal refusal, const std::string& path, const std::string& reason) {
  absl::Status status =
      refusal == DicomRefusal::kUnreadable && reason == "does not exist"
          ? absl::NotFoundError(absl::StrCat("dicom ", path, ": ", reason))
          : absl::InvalidArgumentError(absl::StrCat("dicom ", path, ": ", reason));
  status.SetPayload(kRefusalPayload, absl::Cord(DicomRefusalName(refusal)));
  return status;
}

// DCMTK's codec list is global; registering twice would decode with
// whichever registration comes first, so it happens exactly once.
void RegisterDecodersOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    // Colour JPEG frames come back as RGB when the file says YBR, and always
    // interleaved, so the colour path below knows the layout.
    DJDecoderRegistration::registerCodecs(EDC_photometricInterpretation, EUC_never,
                                          EPC_colorByPixel);
    DJLSDecoderRegistration::registerCodecs(EJLSUC_never, EJLSPC_colorByPixel);
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

// A Modality or VOI LUT: entries for inputs first, first+1, ...; inputs
// outside clamp to the ends (PS3.3 C.11.1.1).
struct LookupTable {
  int64_t first = 0;
  int64_t bits = 16;
  std::vector<uint16_t> data;

  double At(double input) const {
    const int64_t index =
        std::clamp<int64_t>(std::llround(input) - first, 0, static_cast<int64_t>(data.size()) - 1);
    return data[index];
  }
};

// Reads item 0 of `sequence`, if any. The descriptor's first-mapped value is
// signed exactly when the pixel data is (PS3.3 C.11.1.1.1).
std::optional<LookupTable> ReadLookupTable(DcmDataset& dataset, const DcmTagKey& sequence,
                                           bool is_signed) {
  DcmItem* item = nullptr;
  if (dataset.findAndGetSequenceItem(sequence, item, 0).bad() || item == nullptr) return {};
  DcmElement* descriptor = nullptr;
  if (item->findAndGetElement(DCM_LUTDescriptor, descriptor).bad()) return {};
  Uint16 values[3] = {0, 0, 0};
  for (unsigned long i = 0; i < 3; ++i) {
    if (descriptor->getVR() == EVR_SS) {
      Sint16 v = 0;
      if (descriptor->getSint16(v, i).bad()) return {};
      values[i] = static_cast<Uint16>(v);
    } else if (descriptor->getUint16(values[i], i).bad()) {
      return {};
    }
  }
  const Uint16* data = nullptr;
  unsigned long count = 0;
  if (item->findAndGetUint16Array(DCM_LUTData, data, &count).bad() || count == 0) return {};
  const int64_t entries = values[0] == 0 ? 65536 : values[0];
  LookupTable table;
  table.first = is_signed ? static_cast<int16_t>(values[1]) : values[1];
  table.bits = std::clamp<int64_t>(values[2], 1, 16);
  table.data.assign(data, data + std::min<int64_t>(entries, static_cast<int64_t>(count)));
  return table;
}

struct Header {
  DicomFacts facts;
  int64_t high_bit = 0;
  int64_t planar_configuration = 0;
  bool encapsulated = false;
  E_TransferSyntax xfer = EXS_Unknown;
  DcmElement* pixel_data = nullptr;
};

std::string StringOf(DcmDataset& dataset, const DcmTagKey& tag) {
  OFString value;
  if (dataset.findAndGetOFString(tag, value).bad()) return "";
  return value.c_str();
}

int64_t IntegerOf(DcmDataset& dataset, const DcmTagKey& tag, int64_t fallback) {
  Uint16 value = 0;
  if (dataset.findAndGetUint16(tag, value).good()) return value;
  Sint32 text_value = 0;  // IS attributes such as NumberOfFrames.
  if (dataset.findAndGetSint32(tag, text_value).good()) return text_value;
  return fallback;
}

bool HasDicmPrefix(const std::string& path, bool& readable) {
  std::ifstream in(path, std::ios::binary);
  readable = static_cast<bool>(in);
  char bytes[132] = {};
  in.read(bytes, sizeof(bytes));
  if (in.gcount() == sizeof(bytes) && std::memcmp(bytes + 128, "DICM", 4) == 0) return true;
  // Some old exports have no preamble: a raw dataset starting with group
  // 0008 (little endian), which DCMTK can still parse.
  return in.gcount() >= 8 && bytes[0] == 0x08 && bytes[1] == 0x00;
}

// Loads `path` into `file` and reads the header facts. The pixel element is
// left to DCMTK's lazy loading, so facts-only reads stay cheap.
absl::StatusOr<Header> LoadHeader(const std::string& path, DcmFileFormat& file) {
  RegisterDecodersOnce();
  bool readable = false;
  const bool looks_dicom = HasDicmPrefix(path, readable);
  if (!readable) {
    std::ifstream probe(path);
    return Refuse(DicomRefusal::kUnreadable, path, probe ? "cannot be read" : "does not exist");
  }
  if (!looks_dicom) {
    return Refuse(DicomRefusal::kNotDicom, path, "not a DICOM file (no \"DICM\" at byte 128)");
  }
  const OFCondition loaded =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (loaded.bad()) {
    return Refuse(DicomRefusal::kTruncated, path,
                  absl::StrCat("truncated or corrupt: ", loaded.text()));
  }
  DcmDataset& dataset = *file.getDataset();
  Header header;
  DicomFacts& facts = header.facts;
  header.xfer = dataset.getOriginalXfer();
  const DcmXfer xfer(header.xfer);
  facts.transfer_syntax = xfer.getXferName();
  facts.transfer_syntax_uid = xfer.getXferID();
  header.encapsulated = xfer.isEncapsulated();
  facts.modality = StringOf(dataset, DCM_Modality);
  facts.photometric_interpretation = StringOf(dataset, DCM_PhotometricInterpretation);
  facts.sop_instance_uid = StringOf(dataset, DCM_SOPInstanceUID);
  facts.rows = IntegerOf(dataset, DCM_Rows, 0);
  facts.columns = IntegerOf(dataset, DCM_Columns, 0);
  facts.frames = std::max<int64_t>(1, IntegerOf(dataset, DCM_NumberOfFrames, 1));
  facts.samples_per_pixel = IntegerOf(dataset, DCM_SamplesPerPixel, 1);
  facts.bits_allocated = IntegerOf(dataset, DCM_BitsAllocated, 0);
  facts.bits_stored = IntegerOf(dataset, DCM_BitsStored, facts.bits_allocated);
  header.high_bit = IntegerOf(dataset, DCM_HighBit, facts.bits_stored - 1);
  facts.is_signed = IntegerOf(dataset, DCM_PixelRepresentation, 0) == 1;
  header.planar_configuration = IntegerOf(dataset, DCM_PlanarConfiguration, 0);
  if (dataset.findAndGetElement(DCM_PixelData, header.pixel_data).bad() ||
      header.pixel_data == nullptr) {
    return Refuse(DicomRefusal::kNoPixelData, path, "has no pixel data");
  }
  if (header.encapsulated &&
      !DcmCodecList::canChangeCoding(header.xfer, EXS_LittleEndianExplicit)) {
    return Refuse(DicomRefusal::kUnsupportedTransferSyntax, path,
                  absl::StrCat("transfer syntax ", facts.transfer_syntax, " (",
                               facts.transfer_syntax_uid, ") cannot be decoded"));
  }
  return header;
}

absl::Status CheckPixelLayout(const std::string& path, const Header& header) {
  const DicomFacts& f = header.facts;
  const bool grey = f.photometric_interpretation == "MONOCHROME1" ||
                    f.photometric_interpretation == "MONOCHROME2";
  const bool colour = f.photometric_interpretation == "RGB" ||
                      f.photometric_interpretation == "YBR_FULL" ||
                      (header.encapsulated && f.photometric_interpretation == "YBR_FULL_422");
  std::string problem;
  if (f.rows < 1 || f.columns < 1) {
    problem = absl::StrCat("has ", f.rows, "x", f.columns, " pixels");
  } else if (f.rows * f.columns > kMaxDicomPixels || f.frames < 1 || f.frames > kMaxDicomFrames) {
    // Checked before anything is allocated from the header's word: a few
    // bytes of header must not make the site reserve gigabytes.
    problem = absl::StrCat("declares ", f.frames, " frame(s) of ", f.rows, "x", f.columns,
                           " pixels, more than fedmi reads (", kMaxDicomPixels,
                           " pixels per frame, ", kMaxDicomFrames, " frames)");
  } else if (!grey && !colour) {
    problem = absl::StrCat("photometric interpretation '", f.photometric_interpretation,
                           "' is not supported");
  } else if (grey &&
             (f.samples_per_pixel != 1 || (f.bits_allocated != 8 && f.bits_allocated != 16))) {
    problem = absl::StrCat("grey pixels must be 8 or 16 bits allocated with one sample, not ",
                           f.bits_allocated, " bits and ", f.samples_per_pixel, " samples");
  } else if (colour && (f.samples_per_pixel != 3 || f.bits_allocated != 8)) {
    problem = absl::StrCat("colour pixels must be 8-bit with 3 samples, not ", f.bits_allocated,
                           " bits and ", f.samples_per_pixel, " samples");
  } else if (f.bits_stored < 1 || f.bits_stored > f.bits_allocated ||
             header.high_bit < f.bits_stored - 1 || header.high_bit >= f.bits_allocated) {
    problem = absl::StrCat("bits stored ", f.bits_stored, " / high bit ", header.high_bit,
                           " do not fit ", f.bits_allocated, " bits allocated");
  }
  if (!problem.empty()) return Refuse(DicomRefusal::kUnsupportedPixels, path, problem);
  return absl::OkStatus();
}

// Steps 1-3 of the pipeline for every stored bit pattern 0..2^bits_stored-1.
// nullopt when the file's rescale or window values are not finite numbers.
std::optional<std::vector<uint8_t>> BuildGreyTable(DcmDataset& dataset, DicomFacts& facts) {
  const int64_t patterns = int64_t{1} << facts.bits_stored;
  std::vector<double> modality(patterns);
  std::optional<LookupTable> modality_lut =
      ReadLookupTable(dataset, DCM_ModalityLUTSequence, facts.is_signed);
  facts.modality_lut = modality_lut.has_value();
  double slope = 1.0, intercept = 0.0;
  if (!modality_lut) {
    if (dataset.findAndGetFloat64(DCM_RescaleSlope, slope).bad() || slope == 0) slope = 1.0;
    if (dataset.findAndGetFloat64(DCM_RescaleIntercept, intercept).bad()) intercept = 0.0;
  }
  if (!std::isfinite(slope) || !std::isfinite(intercept)) return std::nullopt;
  for (int64_t p = 0; p < patterns; ++p) {
    const int64_t stored = facts.is_signed && (p >> (facts.bits_stored - 1)) & 1 ? p - patterns : p;
    modality[p] = modality_lut ? modality_lut->At(stored) : slope * stored + intercept;
  }

  std::optional<LookupTable> voi_lut =
      ReadLookupTable(dataset, DCM_VOILUTSequence, facts.is_signed);
  double center = 0, width = 0;
  const bool window = !voi_lut && dataset.findAndGetFloat64(DCM_WindowCenter, center, 0).good() &&
                      dataset.findAndGetFloat64(DCM_WindowWidth, width, 0).good() && width >= 1;
  if (window && (!std::isfinite(center) || !std::isfinite(width))) return std::nullopt;
  const std::string function = StringOf(dataset, DCM_VOILUTFunction);
  double low = 0, high = 0;
  if (!voi_lut && !window) {
    const auto [min_it, max_it] = std::minmax_element(modality.begin(), modality.end());
    low = *min_it;
    high = *max_it;
  }
  facts.voi = voi_lut ? "voi_lut" : window ? "window" : "range";
  const bool invert = facts.photometric_interpretation == "MONOCHROME1";

  std::vector<uint8_t> table(patterns);
  for (int64_t p = 0; p < patterns; ++p) {
    const double x = modality[p];
    double y;  // In [0, 1].
    if (voi_lut) {
      y = voi_lut->At(x) / static_cast<double>((int64_t{1} << voi_lut->bits) - 1);
    } else if (window && function == "SIGMOID") {
      y = 1.0 / (1.0 + std::exp(-4.0 * (x - center) / width));
    } else if (window && function == "LINEAR_EXACT") {
      y = (x - center) / width + 0.5;
    } else if (window) {  // LINEAR, PS3.3 C.11.2.1.2.1, piecewise: width 1 has no slope.
      if (x <= center - 0.5 - (width - 1) / 2) {
        y = 0;
      } else if (x > center - 0.5 + (width - 1) / 2) {
        y = 1;
      } else {
        y = (x - (center - 0.5)) / (width - 1) + 0.5;
      }
    } else {
      y = high > low ? (x - low) / (high - low) : 0.0;
    }
    double v = std::isnan(y) ? 0.0 : std::clamp(y, 0.0, 1.0) * 255.0;
    if (invert) v = 255.0 - v;
    table[p] = static_cast<uint8_t>(std::lround(v));
  }
  return table;
}

// The first frame's samples: in place for native pixel data, decoded into
// `decoded` when encapsulated.
absl::StatusOr<const uint8_t*> FirstFrame(const std::string& path, DcmDataset& dataset,
                                          Header& header, std::vector<uint8_t>& decoded,
                                          std::string& colour_model) {
  const DicomFacts& f = header.facts;
  const uint64_t frame_bytes =
      static_cast<uint64_t>(f.rows) * f.columns * f.samples_per_pixel * (f.bits_allocated / 8);
  colour_model = f.photometric_interpretation;
  if (!header.encapsulated) {
    const uint64_t length = header.pixel_data->getLength();
    // CheckPixelLayout bounded rows, columns and frames: no overflow here.
    if (length < frame_bytes * f.frames) {
      return Refuse(
          DicomRefusal::kTruncated, path,
          absl::StrCat("pixel data has ", length, " bytes but ", f.frames, " frame(s) of ", f.rows,
                       "x", f.columns, " need ", frame_bytes * f.frames));
    }
    Uint8* bytes = nullptr;
    OFCondition got = EC_IllegalCall;
    if (f.bits_allocated == 8 && header.pixel_data->getVR() == EVR_OB) {
      got = header.pixel_data->getUint8Array(bytes);
    } else {
      Uint16* words = nullptr;
      got = header.pixel_data->getUint16Array(words);
      bytes = reinterpret_cast<Uint8*>(words);
    }
    if (got.bad() || bytes == nullptr) {
      return Refuse(DicomRefusal::kTruncated, path,
                    absl::StrCat("cannot read pixel data: ", got.text()));
    }
    return bytes;
  }
  auto* pixels = static_cast<DcmPixelData*>(header.pixel_data);
  Uint32 size = 0;
  if (pixels->getUncompressedFrameSize(&dataset, size).bad() || size < frame_bytes ||
      size > 2 * frame_bytes) {
    size = static_cast<Uint32>(frame_bytes);
  }
  decoded.resize(size);
  Uint32 start_fragment = 0;
  OFString model;
  const OFCondition got =
      pixels->getUncompressedFrame(&dataset, 0, start_fragment, decoded.data(), size, model);
  if (got.bad()) {
    return Refuse(DicomRefusal::kTruncated, path,
                  absl::StrCat("cannot decode ", f.transfer_syntax, " frame 1: ", got.text()));
  }
  if (!model.empty()) colour_model = model.c_str();
  return decoded.data();
}

// Colour frames as interleaved RGB, or as luma when `grey` (YBR_FULL's Y is
// already the luma).
std::vector<uint8_t> ColourPixels(const uint8_t* samples, int64_t pixel_count, bool planar,
                                  const std::string& model, bool grey) {
  auto sample = [&](int64_t i, int64_t c) {
    return planar ? samples[c * pixel_count + i] : samples[3 * i + c];
  };
  std::vector<uint8_t> out(pixel_count * (grey ? 1 : 3));
  const bool ybr = model.rfind("YBR", 0) == 0;
  for (int64_t i = 0; i < pixel_count; ++i) {
    double r = sample(i, 0), g = sample(i, 1), b = sample(i, 2);
    if (ybr) {
      const double y = r, cb = g - 128, cr = b - 128;
      r = y + 1.402 * cr;
      g = y - 0.344136 * cb - 0.714136 * cr;
      b = y + 1.772 * cb;
    }
    if (grey) {
      out[i] = ybr ? sample(i, 0)
                   : static_cast<uint8_t>(
                         std::clamp(std::lround(0.299 * r + 0.587 * g + 0.114 * b), 0L, 255L));
    } else {
      out[3 * i] = static_cast<uint8_t>(std::clamp(std::lround(r), 0L, 255L));
      out[3 * i + 1] = static_cast<uint8_t>(std::clamp(std::lround(g), 0L, 255L));
      out[3 * i + 2] = static_cast<uint8_t>(std::clamp(std::lround(b), 0L, 255L));
    }
  }
  return out;
}

}  // namespace

const char* DicomRefusalName(DicomRefusal refusal) {
  switch (refusal) {
    case DicomRefusal::kNone:
      return "none";
    case DicomRefusal::kNotDicom:
      return "not_dicom";
    case DicomRefusal::kNoPixelData:
      return "no_pixel_data";
    case DicomRefusal::kUnsupportedTransferSyntax:
      return "unsupported_transfer_syntax";
    case DicomRefusal::kUnsupportedPixels:
      return "unsupported_pixels";
    case DicomRefusal::kTruncated:
      return "truncated";
    case DicomRefusal::kMultiFrame:
      return "multi_frame";
    case DicomRefusal::kUnreadable:
      return "unreadable";
  }
  return "none";
}

DicomRefusal DicomRefusalOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kRefusalPayload);
  if (!payload) return DicomRefusal::kNone;
  for (DicomRefusal refusal : kAllRefusals) {
    if (*payload == DicomRefusalName(refusal)) return refusal;
  }
  return DicomRefusal::kNone;
}

absl::StatusOr<DicomFacts> ReadDicomFacts(const std::string& path) {
  DcmFileFormat file;
  absl::StatusOr<Header> header = LoadHeader(path, file);
  if (!header.ok()) return header.status();
  return header->facts;
}

absl::StatusOr<PreprocessedDicom> ReadDicomImage(const std::string& path,
                                                 const DicomReadOptions& options) {
  if (options.height < 1 || options.width < 1 || options.height > 1 << 15 ||
      options.width > 1 << 15 || (options.channels != 1 && options.channels != 3)) {
    return absl::InvalidArgumentError(absl::StrCat("image geometry ", options.height, "x",
                                                   options.width, "x", options.channels,
                                                   " is invalid; sides 1..32768, channels 1 or 3"));
  }
  DcmFileFormat file;
  absl::StatusOr<Header> loaded = LoadHeader(path, file);
  if (!loaded.ok()) return loaded.status();
  Header& header = *loaded;
  DicomFacts& facts = header.facts;
  if (absl::Status layout = CheckPixelLayout(path, header); !layout.ok()) return layout;
  if (facts.frames > 1) {
    if (!options.first_frame_only) {
      return Refuse(DicomRefusal::kMultiFrame, path,
                    absl::StrCat("has ", facts.frames,
                                 " frames; multi-frame files need the first-frame option"));
    }
    facts.took_first_frame = true;
  }
  DcmDataset& dataset = *file.getDataset();
  std::vector<uint8_t> decoded;
  std::string colour_model;
  absl::StatusOr<const uint8_t*> frame = FirstFrame(path, dataset, header, decoded, colour_model);
  if (!frame.ok()) return frame.status();

  PreprocessedDicom image;
  image.height = options.height;
  image.width = options.width;
  image.channels = options.channels;
  const int64_t target_pixels = options.height * options.width;
  image.pixels.resize(target_pixels * options.channels);
  const bool colour = facts.samples_per_pixel == 3;
  if (colour) {
    const bool want_grey = options.channels == 1;
    // Native and RLE frames keep the file's planar configuration; the JPEG
    // decoders were registered to return colour-by-pixel.
    const bool planar = header.planar_configuration == 1 &&
                        (!header.encapsulated || header.xfer == EXS_RLELossless);
    const std::vector<uint8_t> rgb =
        ColourPixels(*frame, facts.rows * facts.columns, planar, colour_model, want_grey);
    facts.converted_to_grey = want_grey;
    ResizePadded(rgb.data(), facts.rows, facts.columns, want_grey ? 1 : 3, image.pixels.data(),
                 options.height, options.width);
    image.facts = std::move(facts);
    return image;
  }
  const std::optional<std::vector<uint8_t>> built = BuildGreyTable(dataset, facts);
  if (!built) {
    return Refuse(DicomRefusal::kUnsupportedPixels, path,
                  "has a rescale slope or intercept, or a window center or width, that is not a "
                  "finite number");
  }
  const std::vector<uint8_t>& table = *built;
  const int shift = static_cast<int>(header.high_bit + 1 - facts.bits_stored);
  const uint32_t mask = static_cast<uint32_t>(table.size() - 1);
  uint8_t* grey = image.pixels.data();
  std::vector<uint8_t> one_channel;
  if (options.channels == 3) {
    one_channel.resize(target_pixels);
    grey = one_channel.data();
  }
  if (facts.bits_allocated == 8) {
    resize_internal::ResizeMapped(
        *frame, facts.rows, facts.columns, facts.columns, 1,
        [&](uint8_t v) { return table[(v >> shift) & mask]; }, grey, options.height, options.width);
  } else {
    const auto* words = reinterpret_cast<const uint16_t*>(*frame);
    resize_internal::ResizeMapped(
        words, facts.rows, facts.columns, facts.columns, 1,
        [&](uint16_t v) { return table[(v >> shift) & mask]; }, grey, options.height,
        options.width);
  }
  if (options.channels == 3) {
    ConvertChannels(grey, target_pixels, 1, image.pixels.data(), 3);
    facts.replicated_to_rgb = true;
  }
  image.facts = std::move(facts);
  return image;
}

}  // namespace fedmi
