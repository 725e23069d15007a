// Reading one DICOM file into the 8-bit, channel-last pixels a model trains
// on, plus the facts about the file that a data inspection reports.
//
// The pixel pipeline follows the order PS3.3 C.11 and PS3.4 N.2 imply:
//  1. Modality LUT Sequence, else RescaleSlope/RescaleIntercept (identity when
//     absent), applied to the stored values (masked to BitsStored, sign
//     extended when PixelRepresentation is 1);
//  2. VOI LUT Sequence, else WindowCenter/WindowWidth (first pair, with
//     VOILUTFunction LINEAR, LINEAR_EXACT or SIGMOID), else a linear map of
//     the whole range the stored values can take (2^BitsStored patterns
//     after step 1: the data's own min and max are not used, so one file's
//     brightness never depends on its content);
//  3. MONOCHROME1 inverted (255 - v), so a MONOCHROME1 file and its
//     MONOCHROME2 twin preprocess to the same pixels;
//  4. resized to height x width keeping the aspect ratio (area averaging
//     when shrinking, bilinear when enlarging), centred, the rest padded
//     with 0 (black, after inversion).
// Steps 1-3 are one 2^BitsStored-entry lookup table built per file, fused
// with the area averaging of step 4: each stored value is read once.
//
// Colour files (RGB, YBR_FULL; 8-bit) skip steps 1-3; when one channel is
// wanted they become luma (0.299 R + 0.587 G + 0.114 B) and the facts say
// so. Grey files replicate into 3 channels when 3 are wanted.
//
// Refusals are InvalidArgument (NotFound for a missing file) whose message
// names the file and the reason, and which carry a DicomRefusal that
// DicomRefusalOf() reads back, so loaders can count them per reason.
//
// Thread-safe: DCMTK's decoders are registered once per process, on first
// use; each call reads its own file. The first call also silences DCMTK's
// own logging (fatal only): every problem comes back as a status instead.
#ifndef FEDMI_COMMON_DATA_DICOM_IMAGE_H_
#define FEDMI_COMMON_DATA_DICOM_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedmi {

// The largest image ReadDicomImage reads, checked before any allocation:
// 16384 x 16384 pixels per frame, 65536 frames.
inline constexpr int64_t kMaxDicomPixels = int64_t{1} << 28;
inline constexpr int64_t kMaxDicomFrames = int64_t{1} << 16;

enum class DicomRefusal {
  kNone,                       // Not a refusal (or not from ReadDicomImage).
  kNotDicom,                   // No "DICM" prefix and no dataset to parse.
  kNoPixelData,                // No (7FE0,0010) element.
  kUnsupportedTransferSyntax,  // Compressed in a way DCMTK cannot decode.
  kUnsupportedPixels,          // e.g. 32-bit, 1-bit, YBR_FULL_422 raw, 0 rows.
  kTruncated,                  // File or pixel data shorter than declared.
  kMultiFrame,                 // More than one frame without first_frame_only.
  kUnreadable,                 // Missing file or I/O error.
};

// A stable snake_case name ("not_dicom", "no_pixel_data", ...), for reports.
const char* DicomRefusalName(DicomRefusal refusal);

// The refusal a ReadDicomImage status carries; kNone for other statuses.
DicomRefusal DicomRefusalOf(const absl::Status& status);

struct DicomReadOptions {
  int64_t height = 224;
  int64_t width = 224;
  int64_t channels = 1;  // 1 or 3.
  // Multi-frame files are refused unless this is set; then frame 1 is used.
  bool first_frame_only = false;
};

// What the file declares, and what the pipeline did with it.
struct DicomFacts {
  std::string modality;                    // "" when absent.
  std::string photometric_interpretation;  // As in the file, e.g. "MONOCHROME1".
  std::string transfer_syntax;             // DCMTK's name, e.g. "JPEG-LS Lossless".
  std::string transfer_syntax_uid;
  std::string sop_instance_uid;  // "" when absent.
  int64_t rows = 0;
  int64_t columns = 0;
  int64_t frames = 1;
  int64_t samples_per_pixel = 1;
  int64_t bits_allocated = 0;
  int64_t bits_stored = 0;
  bool is_signed = false;  // PixelRepresentation 1.
  // Which step 2 applied: "voi_lut", "window" or "range" ("" for colour).
  std::string voi;
  bool modality_lut = false;  // A Modality LUT Sequence was applied.
  bool converted_to_grey = false;
  bool replicated_to_rgb = false;
  bool took_first_frame = false;
};

struct PreprocessedDicom {
  DicomFacts facts;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 1;
  std::vector<uint8_t> pixels;  // height * width * channels, channel-last.
};

// Reads `path` and runs the pipeline above. Errors: InvalidArgument for
// options out of range (height/width 1..32768, channels 1 or 3), otherwise
// refusals as described at the top ("dicom <path>: <reason>").
absl::StatusOr<PreprocessedDicom> ReadDicomImage(const std::string& path,
                                                 const DicomReadOptions& options = {});

// Reads only the header facts (pixel data is not decoded); refuses what
// ReadDicomImage refuses before decoding (not DICOM, no pixel data,
// truncated header, unsupported transfer syntax), never multi-frame.
absl::StatusOr<DicomFacts> ReadDicomFacts(const std::string& path);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DICOM_IMAGE_H_
