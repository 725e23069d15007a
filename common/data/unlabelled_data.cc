#include "common/data/unlabelled_data.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/csv.h"
#include "common/base/status.h"
#include "common/data/image_files_internal.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMissingListed = 5;

absl::Status MissingIdsError(const std::vector<std::string>& missing, const std::string& where) {
  std::vector<std::string> shown(missing.begin(),
                                 missing.begin() + std::min(missing.size(), kMissingListed));
  return absl::NotFoundError(absl::StrCat(
      missing.size(), " image id(s) of the list are not among the unlabelled images of ", where,
      " (", absl::StrJoin(shown, ", "), missing.size() > kMissingListed ? ", ..." : "",
      "); nothing was changed. Was the list written for this data, and not imported already?"));
}

// The class index `text` names: a number below num_classes or one of
// `names`.
absl::StatusOr<int64_t> ParseClass(const NewLabel& label, int64_t num_classes,
                                   const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == label.label) return static_cast<int64_t>(i);
  }
  int64_t index = 0;
  if (absl::SimpleAtoi(label.label, &index) && index >= 0 && index < num_classes) return index;
  return absl::InvalidArgumentError(absl::StrCat(
      "line ", label.line, ": label '", label.label, "' of image ", label.id,
      " is not a class of this data (", names.empty() ? "" : absl::StrJoin(names, ", "),
      names.empty() ? "" : ", or ", "0 to ", num_classes - 1, "); nothing was changed"));
}

void AppendLittleEndian(int64_t value, int64_t item_size, std::vector<char>& out) {
  for (int64_t b = 0; b < item_size; ++b) {
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * b)) & 0xff));
  }
}

absl::StatusOr<LabelImportReport> ImportIntoNpz(const std::string& path,
                                                const std::vector<NewLabel>& labels, Env& env) {
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
  if (arrays.count("train_masks") > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("npz ", path,
                     " has masks: labelling its images needs masks too, which a label list "
                     "does not give"));
  }
  UnlabelledPool pool;
  RETURN_IF_ERROR(UnlabelledFromNpz(arrays, path, pool));
  if (pool.images.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("npz ", path, " has no ", kNpzUnlabelledImages, " to label"));
  }
  ASSIGN_OR_RETURN(ImageSet train, ImageSetFromNpz(arrays, path, "train"));
  if (train.height != pool.images.height || train.width != pool.images.width ||
      train.channels != pool.images.channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "npz ", path, ": ", kNpzUnlabelledImages, " are ", pool.images.height, "x",
        pool.images.width, "x", pool.images.channels, " but train_images are ", train.height, "x",
        train.width, "x", train.channels, "; they cannot join the training set"));
  }
  int64_t num_classes = 2;
  for (int64_t label : train.labels) num_classes = std::max(num_classes, label + 1);
  std::map<std::string, int64_t> class_of_id;
  std::vector<std::string> missing;
  const std::set<std::string> pool_ids(pool.ids.begin(), pool.ids.end());
  for (const NewLabel& label : labels) {
    ASSIGN_OR_RETURN(class_of_id[label.id], ParseClass(label, num_classes, {}));
    if (pool_ids.count(label.id) == 0) missing.push_back(label.id);
  }
  if (!missing.empty()) return MissingIdsError(missing, path);

  NpyArray& train_images = arrays.at("train_images");
  NpyArray& train_labels = arrays.at("train_labels");
  NpyArray& unlabelled = arrays.at(kNpzUnlabelledImages);
  ASSIGN_OR_RETURN(const int64_t item_size, NpyItemSize(train_labels.dtype));
  const int64_t bytes = pool.images.ImageBytes();
  std::vector<char> kept;
  kept.reserve(unlabelled.data.size());
  LabelImportReport report;
  for (int64_t row = 0; row < pool.images.size(); ++row) {
    const char* image = unlabelled.data.data() + row * bytes;
    auto found = class_of_id.find(pool.ids[row]);
    if (found == class_of_id.end()) {
      kept.insert(kept.end(), image, image + bytes);
      continue;
    }
    train_images.data.insert(train_images.data.end(), image, image + bytes);
    AppendLittleEndian(found->second, item_size, train_labels.data);
    ++train_images.shape[0];
    ++train_labels.shape[0];
    ++report.imported;
    ++report.per_class[found->second];
  }
  unlabelled.data = std::move(kept);
  unlabelled.shape[0] -= report.imported;
  report.unlabelled_left = unlabelled.shape[0];
  RETURN_IF_ERROR(WriteNpz(path, arrays, env));
  return report;
}

// labels.csv of a DICOM folder: the empty label cell of each listed row is
// filled in, and the file is written again atomically.
absl::StatusOr<LabelImportReport> ImportIntoLabelsCsv(const fs::path& csv_path,
                                                      const std::vector<NewLabel>& labels,
                                                      Env& env) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(csv_path.string(), env));
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : lines) rows.push_back(CsvFields(line));
  const int key = std::max(CsvColumn(rows[0], "file"), CsvColumn(rows[0], "sop_instance_uid"));
  const int label = CsvColumn(rows[0], "label");
  if (key < 0 || label < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        csv_path.string(), " has no file or sop_instance_uid column and label column"));
  }
  // The classes the file already uses: indices, or names.
  std::set<std::string> names;
  bool all_integers = true;
  int64_t num_classes = 2;
  std::map<std::string, size_t> unlabelled_row;  // key -> row
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::vector<std::string>& fields = rows[r];
    if (fields.size() <= static_cast<size_t>(std::max(key, label))) continue;
    if (fields[label].empty()) {
      unlabelled_row[fields[key]] = r;
      continue;
    }
    int64_t index = 0;
    if (absl::SimpleAtoi(fields[label], &index) && index >= 0) {
      num_classes = std::max(num_classes, index + 1);
    } else {
      all_integers = false;
    }
    names.insert(fields[label]);
  }
  const std::vector<std::string> class_names =
      all_integers ? std::vector<std::string>{}
                   : std::vector<std::string>(names.begin(), names.end());
  std::vector<std::string> missing;
  LabelImportReport report;
  for (const NewLabel& new_label : labels) {
    ASSIGN_OR_RETURN(
        const int64_t index,
        ParseClass(new_label, all_integers ? num_classes : static_cast<int64_t>(class_names.size()),
                   class_names));
    auto row = unlabelled_row.find(new_label.id);
    if (row == unlabelled_row.end()) {
      missing.push_back(new_label.id);
      continue;
    }
    rows[row->second][label] = all_integers ? std::to_string(index) : class_names[index];
    unlabelled_row.erase(row);
    ++report.imported;
    ++report.per_class[index];
  }
  if (!missing.empty()) return MissingIdsError(missing, csv_path.string());
  std::string rewritten;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (r + 1 == rows.size() && rows[r].size() == 1 && rows[r][0].empty()) break;
    std::vector<std::string> quoted;
    for (const std::string& field : rows[r]) quoted.push_back(CsvField(field));
    absl::StrAppend(&rewritten, absl::StrJoin(quoted, ","), "\n");
  }
  RETURN_IF_ERROR(WriteFileAtomically(env, csv_path.string(), rewritten));
  report.unlabelled_left = static_cast<int64_t>(unlabelled_row.size());
  return report;
}

absl::StatusOr<LabelImportReport> ImportIntoFolder(const std::string& dir,
                                                   const std::vector<NewLabel>& labels) {
  const fs::path root(dir);
  std::error_code ec;
  const fs::path class_root = fs::is_directory(root / "train", ec) ? root / "train" : root;
  std::vector<std::string> names;
  for (fs::directory_iterator it(class_root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !name.empty() && name[0] != '.' && name != kUnlabelledFolder) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image folder ", class_root.string(), " has no class folders to label into"));
  }
  std::vector<std::pair<fs::path, fs::path>> moves;
  std::vector<std::string> missing;
  LabelImportReport report;
  for (const NewLabel& label : labels) {
    ASSIGN_OR_RETURN(const int64_t index,
                     ParseClass(label, static_cast<int64_t>(names.size()), names));
    const fs::path from = root / label.id;
    // Ids name files directly in unlabelled/: nothing else may be moved.
    if (fs::path(label.id).parent_path() != kUnlabelledFolder || !fs::is_regular_file(from, ec)) {
      missing.push_back(label.id);
      continue;
    }
    const fs::path to = class_root / names[index] / from.filename();
    if (fs::exists(to, ec)) {
      return absl::AlreadyExistsError(absl::StrCat("line ", label.line, ": ", to.string(),
                                                   " exists already; nothing was changed"));
    }
    moves.emplace_back(from, to);
    ++report.per_class[index];
  }
  if (!missing.empty()) return MissingIdsError(missing, (root / kUnlabelledFolder).string());
  for (const auto& [from, to] : moves) {
    fs::rename(from, to, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("moving ", from.string(), " to ", to.string(),
                                              " failed (", ec.message(), ") after ",
                                              report.imported, " of ", moves.size(),
                                              " were moved; import the list again for the rest"));
    }
    ++report.imported;
  }
  ASSIGN_OR_RETURN(std::vector<fs::path> left, SortedImageFiles(root / kUnlabelledFolder));
  report.unlabelled_left = static_cast<int64_t>(left.size());
  return report;
}

}  // namespace

absl::Status UnlabelledFromNpz(const std::map<std::string, NpyArray>& arrays,
                               const std::string& path, UnlabelledPool& pool) {
  auto found = arrays.find(kNpzUnlabelledImages);
  if (found == arrays.end()) return absl::OkStatus();
  const NpyArray& images = found->second;
  const std::string what = absl::StrCat("npz ", path, " member '", kNpzUnlabelledImages, "'");
  const size_t rank = images.shape.size();
  if (rank != 3 && rank != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", rank, " dimensions; images must be (N,H,W) or (N,H,W,C)"));
  }
  if (images.dtype != "|u1") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has dtype ", images.dtype, "; images must be uint8 (|u1)"));
  }
  // The pool joins the training images when labelled: same sides, same
  // channels.
  auto train = arrays.find("train_images");
  for (size_t axis = 1; axis < rank; ++axis) {
    const bool mismatch =
        train != arrays.end() &&
        (train->second.shape.size() != rank || train->second.shape[axis] != images.shape[axis]);
    if (images.shape[axis] < 1 || mismatch) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has shape (", absl::StrJoin(images.shape, ", "),
                       "); unlabelled images must have the training images' sides and channels"));
    }
  }
  ImageSet& set = pool.images;
  set.height = images.shape[1];
  set.width = images.shape[2];
  set.channels = rank == 4 ? images.shape[3] : 1;
  const auto* bytes = reinterpret_cast<const uint8_t*>(images.data.data());
  set.pixels.assign(bytes, bytes + images.data.size());
  set.labels.assign(images.shape[0], kNoLabel);
  pool.ids.clear();
  for (int64_t row = 0; row < set.size(); ++row) pool.ids.push_back(ImageId(set, row));
  return absl::OkStatus();
}

absl::Status LoadUnlabelledFolder(const std::string& dir, const SiteDataOptions& options,
                                  UnlabelledPool& pool) {
  const fs::path folder = fs::path(dir) / kUnlabelledFolder;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<fs::path> files, SortedImageFiles(folder));
  ImageSet& set = pool.images;
  set.height = options.height;
  set.width = options.width;
  set.channels = options.channels;
  for (const fs::path& file : files) {
    RETURN_IF_ERROR(AppendImage(file, options.height, options.width, options.channels, set.pixels));
    set.labels.push_back(kNoLabel);
    pool.ids.push_back(absl::StrCat(kUnlabelledFolder, "/", file.filename().string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<UnlabelledPool> LoadUnlabelledPool(const std::string& path,
                                                  const SiteDataOptions& options) {
  UnlabelledPool pool;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    RETURN_IF_ERROR(LoadUnlabelledFolder(path, options, pool));
  } else {
    ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
    RETURN_IF_ERROR(UnlabelledFromNpz(arrays, path, pool));
    RETURN_IF_ERROR(FitImageSet(pool.images, options.height, options.width, options.channels));
  }
  return pool;
}

absl::StatusOr<LabelImportReport> ImportLabels(const std::string& data_path,
                                               const std::vector<NewLabel>& labels, Env& env) {
  std::error_code ec;
  if (!fs::exists(data_path, ec)) {
    return absl::NotFoundError(absl::StrCat("data file ", data_path, " does not exist"));
  }
  std::map<std::string, int64_t> line_of;
  for (const NewLabel& label : labels) {
    auto [it, inserted] = line_of.emplace(label.id, label.line);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("image ", label.id, " is listed twice (lines ",
                                                     it->second, " and ", label.line,
                                                     "); nothing was changed"));
    }
  }
  if (fs::is_directory(data_path, ec)) {
    const fs::path csv = fs::path(data_path) / "labels.csv";
    if (fs::is_regular_file(csv, ec)) return ImportIntoLabelsCsv(csv, labels, env);
    return ImportIntoFolder(data_path, labels);
  }
  return ImportIntoNpz(data_path, labels, env);
}

}  // namespace fedmi
