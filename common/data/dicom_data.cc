#include "common/data/dicom_data.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/csv.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

constexpr size_t kFirstSkippedKept = 5;

bool IsDicomFile(const fs::path& file) {
  std::string ext = file.extension().string();
  absl::AsciiStrToLower(&ext);
  return ext == ".dcm";
}

// .dcm files below `dir` (hidden entries skipped), sorted by path.
std::vector<fs::path> DicomFilesBelow(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && IsDicomFile(it->path())) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> VisibleSubdirectories(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!name.empty() && name[0] != '.' && it->is_directory(type_ec)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool IsSplitName(const std::string& name) {
  return name == "train" || name == "val" || name == "test";
}

// One file to read; label -1 (and split "") until a SOPInstanceUID match.
struct Job {
  std::string path;
  std::string split;
  int64_t label = -1;
  std::string key;  // its labels.csv key (file layout)
};

struct CsvLabels {
  bool by_uid = false;
  // key (relative path or SOPInstanceUID) -> (label, split)
  std::map<std::string, std::pair<int64_t, std::string>> rows;
  std::vector<std::string> class_names;
};

absl::StatusOr<CsvLabels> ReadLabelsCsv(const fs::path& csv_path) {
  std::ifstream in(csv_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", csv_path.string()));
  const std::string where = csv_path.string();
  std::string line;
  if (!std::getline(in, line)) {
    return absl::InvalidArgumentError(absl::StrCat(where, " is empty; it needs a header row"));
  }
  const std::vector<std::string> header = CsvFields(line);
  int key = -1, label = -1, split = -1;
  CsvLabels labels;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    const std::string name = absl::AsciiStrToLower(header[i]);
    if (name == "file" || name == "sop_instance_uid") {
      if (key >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " has both 'file' and 'sop_instance_uid' columns; use one"));
      }
      key = i;
      labels.by_uid = name == "sop_instance_uid";
    } else if (name == "label") {
      label = i;
    } else if (name == "split") {
      split = i;
    }
  }
  if (key < 0 || label < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " header '", line,
                     "' needs a 'file' or 'sop_instance_uid' column and a 'label' column"));
  }
  std::vector<std::tuple<std::string, std::string, std::string>> raw;  // key, label, split
  for (int line_number = 2; std::getline(in, line); ++line_number) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const std::vector<std::string> fields = CsvFields(line);
    if (static_cast<int>(fields.size()) <= std::max({key, label, split})) {
      return absl::InvalidArgumentError(absl::StrCat(where, " line ", line_number, " has ",
                                                     fields.size(), " fields; the header has ",
                                                     header.size()));
    }
    std::string split_name = split >= 0 && !fields[split].empty() ? fields[split] : "train";
    absl::AsciiStrToLower(&split_name);
    if (!IsSplitName(split_name)) {
      return absl::InvalidArgumentError(absl::StrCat(where, " line ", line_number, " has split '",
                                                     fields[split],
                                                     "'; expected train, val or test"));
    }
    if (fields[key].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " line ", line_number, " has an empty ", header[key]));
    }
    if (fields[label].empty()) {
      // Labelled later, it joins training: a held-out image must come labelled.
      if (split_name != "train") {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " line ", line_number, " has no label but split '", split_name,
                         "'; an unlabelled image's split must be train or empty"));
      }
      labels.rows[fields[key]] = {kNoLabel, kDicomUnlabelledSplit};
      continue;
    }
    raw.emplace_back(fields[key], fields[label], split_name);
  }
  bool all_integers = true;
  std::set<std::string> names;
  for (const auto& [key_value, label_value, split_value] : raw) {
    int64_t index = 0;
    all_integers = all_integers && absl::SimpleAtoi(label_value, &index) && index >= 0;
    names.insert(label_value);
  }
  if (!all_integers) labels.class_names.assign(names.begin(), names.end());
  for (const auto& [key_value, label_value, split_value] : raw) {
    int64_t index = 0;
    if (all_integers) {
      absl::SimpleAtoi(label_value, &index);
    } else {
      index = std::lower_bound(labels.class_names.begin(), labels.class_names.end(), label_value) -
              labels.class_names.begin();
    }
    labels.rows[key_value] = {index, split_value};
  }
  return labels;
}

// Accumulates the splits and the report while files are read.
class FolderLoad {
 public:
  FolderLoad(const DicomFolderOptions& options,
             const std::function<void(const DicomFileVisit&)>& visit)
      : options_(options), visit_(visit) {}

  DicomFolderData& data() { return data_; }

  void Skip(const std::string& path, const std::string& split, const std::string& reason,
            const absl::Status& status) {
    DataLoadReport& report = data_.report;
    ++report.files_seen;
    ++report.files_skipped;
    ++report.skipped_by_reason[reason];
    if (report.first_skipped.size() < kFirstSkippedKept) {
      report.first_skipped.push_back(std::string(status.message()));
    }
    if (visit_) visit_({path, split, -1, status, nullptr});
  }

  // The image of a read, or nullopt after counting the skip.
  std::optional<PreprocessedDicom> Use(const std::string& path, const std::string& split,
                                       absl::StatusOr<PreprocessedDicom>& image) {
    if (!image.ok()) {
      const DicomRefusal refusal = DicomRefusalOf(image.status());
      Skip(path, split, refusal == DicomRefusal::kNone ? "undecodable" : DicomRefusalName(refusal),
           image.status());
      return std::nullopt;
    }
    return *std::move(image);
  }

  // Reads `jobs` on options' threads, a chunk at a time (so memory holds at
  // most a chunk of decoded images beyond the splits), and hands each
  // result to `use` in job order: the outcome never depends on timing.
  template <typename Use>
  void ReadInOrder(const std::vector<Job>& jobs, Use use) {
    constexpr size_t kChunk = 256;
    int64_t threads = options_.threads > 0
                          ? options_.threads
                          : static_cast<int64_t>(std::thread::hardware_concurrency());
    threads = std::max<int64_t>(1, threads);
    std::vector<absl::StatusOr<PreprocessedDicom>> results;
    for (size_t begin = 0; begin < jobs.size(); begin += kChunk) {
      const size_t end = std::min(jobs.size(), begin + kChunk);
      results.assign(end - begin, absl::UnknownError("not read"));
      std::atomic<size_t> next{begin};
      auto work = [&] {
        for (size_t i = next++; i < end; i = next++) {
          // An exception must not leave the thread: it would end the
          // daemon. A file too large to decode is skipped like any other.
          try {
            results[i - begin] = ReadDicomImage(jobs[i].path, options_.read);
          } catch (const std::bad_alloc&) {
            results[i - begin] = absl::ResourceExhaustedError(
                absl::StrCat("dicom ", jobs[i].path, ": too large to decode in memory"));
          }
        }
      };
      std::vector<std::thread> pool;
      for (int64_t t = 1; t < std::min<int64_t>(threads, end - begin); ++t) pool.emplace_back(work);
      work();
      for (std::thread& thread : pool) thread.join();
      for (size_t i = begin; i < end; ++i) use(jobs[i], results[i - begin]);
    }
  }

  void Add(const std::string& path, const std::string& split, int64_t label,
           const PreprocessedDicom& image, const std::string& key = "") {
    if (split == kDicomUnlabelledSplit) data_.unlabelled_keys.push_back(key);
    DataLoadReport& report = data_.report;
    ++report.files_seen;
    ++report.files_loaded;
    const DicomFacts& facts = image.facts;
    if (facts.rows != image.height || facts.columns != image.width) ++report.conversions["resized"];
    if (facts.converted_to_grey) ++report.conversions["colour_to_grey"];
    if (facts.replicated_to_rgb) ++report.conversions["grey_to_rgb"];
    if (facts.took_first_frame) ++report.conversions["first_frame"];
    ImageSet& set = data_.splits[split];
    set.height = image.height;
    set.width = image.width;
    set.channels = image.channels;
    set.pixels.insert(set.pixels.end(), image.pixels.begin(), image.pixels.end());
    set.labels.push_back(label);
    if (visit_) visit_({path, split, label, absl::OkStatus(), &image});
  }

  absl::Status Finish(const std::string& dir) {
    const DataLoadReport& report = data_.report;
    const double bad =
        report.files_seen > 0 ? static_cast<double>(report.files_skipped) / report.files_seen : 0.0;
    if (report.files_loaded == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("dicom folder ", dir, " has no usable DICOM file (", report.files_seen,
                       " seen", report.first_skipped.empty() ? "" : ": ",
                       absl::StrJoin(report.first_skipped, "; "), ")"));
    }
    if (bad > options_.max_bad_fraction) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "dicom folder %s: %d of %d files skipped (%.1f%%), more than max_bad_fraction %.1f%%: %s",
          dir, report.files_skipped, report.files_seen, 100 * bad, 100 * options_.max_bad_fraction,
          absl::StrJoin(report.first_skipped, "; ")));
    }
    return absl::OkStatus();
  }

 private:
  const DicomFolderOptions& options_;
  const std::function<void(const DicomFileVisit&)>& visit_;
  DicomFolderData data_;
};

absl::Status LoadCsvLayout(const fs::path& root, FolderLoad& load) {
  ASSIGN_OR_RETURN(CsvLabels labels, ReadLabelsCsv(root / "labels.csv"));
  DataLoadReport& report = load.data().report;
  report.source = "dicom_csv";
  report.class_names = labels.class_names;
  std::set<std::string> matched;
  std::vector<Job> jobs;
  for (const fs::path& file : DicomFilesBelow(root)) {
    if (labels.by_uid) {
      jobs.push_back({file.string(), "", -1});
      continue;
    }
    auto row = labels.rows.find(file.lexically_relative(root).generic_string());
    if (row == labels.rows.end()) {
      ++report.files_unlabelled;
      continue;
    }
    matched.insert(row->first);
    jobs.push_back({file.string(), row->second.second, row->second.first, row->first});
  }
  load.ReadInOrder(jobs, [&](const Job& job, absl::StatusOr<PreprocessedDicom>& result) {
    std::optional<PreprocessedDicom> image = load.Use(job.path, job.split, result);
    if (!image) return;
    if (!labels.by_uid) {
      load.Add(job.path, job.split, job.label, *image, job.key);
      return;
    }
    auto row = labels.rows.find(image->facts.sop_instance_uid);
    if (row == labels.rows.end()) {
      ++report.files_unlabelled;
    } else if (!matched.insert(row->first).second) {
      load.Skip(
          job.path, row->second.second, "duplicate_sop_instance_uid",
          absl::InvalidArgumentError(absl::StrCat("dicom ", job.path, ": SOPInstanceUID ",
                                                  row->first, " already seen in another file")));
    } else {
      load.Add(job.path, row->second.second, row->second.first, *image, row->first);
    }
  });
  for (const auto& [key, row] : labels.rows) {
    if (matched.count(key) > 0) continue;
    const std::string what = labels.by_uid ? absl::StrCat("no file has SOPInstanceUID ", key)
                                           : absl::StrCat((root / key).string(), " is missing");
    load.Skip((root / key).string(), row.second, "missing_file",
              absl::NotFoundError(absl::StrCat("labels.csv names a file that is absent: ", what)));
  }
  return absl::OkStatus();
}

void LoadClassFolderLayout(const fs::path& root, FolderLoad& load) {
  std::vector<std::pair<std::string, fs::path>> split_dirs;  // (split, dir)
  for (const std::string& name : VisibleSubdirectories(root)) {
    if (IsSplitName(name)) split_dirs.emplace_back(name, root / name);
  }
  if (split_dirs.empty()) split_dirs.emplace_back("train", root);
  std::set<std::string> class_set;
  for (const auto& [split, dir] : split_dirs) {
    for (const std::string& name : VisibleSubdirectories(dir)) class_set.insert(name);
  }
  DataLoadReport& report = load.data().report;
  report.source = "dicom_folders";
  report.class_names.assign(class_set.begin(), class_set.end());
  std::vector<Job> jobs;
  for (const auto& [split, dir] : split_dirs) {
    for (const std::string& name : VisibleSubdirectories(dir)) {
      const int64_t label =
          std::lower_bound(report.class_names.begin(), report.class_names.end(), name) -
          report.class_names.begin();
      for (const fs::path& file : DicomFilesBelow(dir / name)) {
        jobs.push_back({file.string(), split, label});
      }
    }
  }
  load.ReadInOrder(jobs, [&](const Job& job, absl::StatusOr<PreprocessedDicom>& result) {
    if (std::optional<PreprocessedDicom> image = load.Use(job.path, job.split, result)) {
      load.Add(job.path, job.split, job.label, *image);
    }
  });
}

}  // namespace

bool IsDicomFolder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  if (fs::is_regular_file(fs::path(dir) / "labels.csv", ec)) return true;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && IsDicomFile(it->path())) return true;
  }
  return false;
}

absl::StatusOr<DicomFolderData> LoadDicomFolder(
    const std::string& dir, const DicomFolderOptions& options,
    const std::function<void(const DicomFileVisit&)>& visit) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("dicom folder ", dir, " does not exist"));
  }
  FolderLoad load(options, visit);
  const fs::path root(dir);
  if (fs::is_regular_file(root / "labels.csv", ec)) {
    RETURN_IF_ERROR(LoadCsvLayout(root, load));
  } else {
    LoadClassFolderLayout(root, load);
  }
  RETURN_IF_ERROR(load.Finish(dir));
  return std::move(load.data());
}

std::string FormatLoadReport(const DataLoadReport& report) {
  std::string text = absl::StrCat("loaded ", report.files_loaded, " of ", report.files_seen,
                                  " files (", report.source, ")\n");
  if (report.files_skipped > 0) {
    std::vector<std::string> reasons;
    for (const auto& [reason, count] : report.skipped_by_reason) {
      reasons.push_back(absl::StrCat(count, " ", reason));
    }
    absl::StrAppend(&text, "  skipped ", report.files_skipped,
                    " files: ", absl::StrJoin(reasons, ", "), "\n");
    for (const std::string& first : report.first_skipped)
      absl::StrAppend(&text, "    ", first, "\n");
  }
  if (report.files_unlabelled > 0) {
    absl::StrAppend(&text, "  ignored ", report.files_unlabelled,
                    " files that labels.csv does not name\n");
  }
  if (!report.conversions.empty()) {
    std::vector<std::string> made;
    for (const auto& [kind, count] : report.conversions)
      made.push_back(absl::StrCat(count, " ", kind));
    absl::StrAppend(&text, "  conversions: ", absl::StrJoin(made, ", "), "\n");
  }
  return text;
}

}  // namespace fedmi
