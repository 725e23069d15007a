// A hospital's DICOM export as labelled training data. Two layouts:
//
//  (a) labels.csv at the folder's root, .dcm files at any depth below it.
//      The first row is a header naming the columns (any order, extra
//      columns ignored):
//        file,label[,split]              file = path relative to the root,
//                                        '/'-separated
//        sop_instance_uid,label[,split]  matched against each file's
//                                        SOPInstanceUID
//      `label` is a class index when every label is a non-negative integer,
//      otherwise a class name (indices follow the byte-wise sorted names).
//      `split` is train, val or test; empty or absent means train. A row
//      with an empty label names an unlabelled image (split "unlabelled",
//      label kNoLabel): the pool active learning picks from. Fields may be
//      double-quoted ("" for a quote).
//  (b) no labels.csv: one sub-folder per class holding .dcm files at any
//      depth, either directly in the folder (all train) or under train/,
//      val/ and test/ sub-folders. Class indices follow the byte-wise sorted
//      union of the class names over the splits.
//
// A file that cannot be used (see DicomRefusal, plus "missing_file" for a
// labels.csv row whose file is absent and "duplicate_sop_instance_uid") is
// skipped and counted in the report; loading fails only when more than
// max_bad_fraction of the files were skipped. Files that labels.csv does not
// name are ignored (counted as unlabelled, not as bad). Files and entries
// starting with '.' are ignored.
//
// Thread-safe (no shared state). Files are decoded on several threads
// (DicomFolderOptions::threads) and used in path order.
#ifndef FEDMI_COMMON_DATA_DICOM_DATA_H_
#define FEDMI_COMMON_DATA_DICOM_DATA_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/data/dataset.h"
#include "common/data/dicom_image.h"

namespace fedmi {

struct DicomFolderOptions {
  DicomReadOptions read;  // Geometry and the first-frame option.
  // Largest share of skipped files (of the files seen) that still loads.
  double max_bad_fraction = 0.05;
  // Files decoded at once; 0 means one per core. Results are used in path
  // order whatever this is, so the data never depends on it.
  int64_t threads = 0;
};

// The split of labels.csv rows with an empty label.
inline constexpr char kDicomUnlabelledSplit[] = "unlabelled";

struct DicomFolderData {
  // The splits that have rows ("train", "val", "test").
  std::map<std::string, ImageSet> splits;
  // The labels.csv key (file or SOPInstanceUID) of each image of the
  // "unlabelled" split, in its order.
  std::vector<std::string> unlabelled_keys;
  DataLoadReport report;  // source "dicom_csv" or "dicom_folders".
};

// One file as the loader saw it, for inspection. `image` is null and
// `status` not OK when the file was skipped.
struct DicomFileVisit {
  std::string path;
  std::string split;
  int64_t label = -1;
  absl::Status status;
  const PreprocessedDicom* image = nullptr;
};

// True when `dir` is a directory holding labels.csv or any .dcm file (at
// any depth): the folders LoadDicomFolder reads.
bool IsDicomFolder(const std::string& dir);

// Loads layout (a) or (b) of `dir` as described above, calling `visit`
// (when given, on the calling thread) for every file seen, in path order. Errors: NotFound when
// `dir` does not exist; InvalidArgument for a labels.csv without the needed
// columns, an unknown split or a row with too few fields ("labels.csv line
// 7: ..."), no usable file at all, or too many skipped files ("dicom folder
// <dir>: 3 of 20 files skipped (15.0%), more than max_bad_fraction 5.0%:
// <first reasons>").
absl::StatusOr<DicomFolderData> LoadDicomFolder(
    const std::string& dir, const DicomFolderOptions& options = {},
    const std::function<void(const DicomFileVisit&)>& visit = nullptr);

// Appends `report` as human-readable lines ("  skipped 2 files: 1
// not_dicom, 1 truncated"), for logs and the inspector.
std::string FormatLoadReport(const DataLoadReport& report);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DICOM_DATA_H_
