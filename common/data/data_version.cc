#include "common/data/data_version.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

// File times tick in jiffies, so two changes a few milliseconds apart may
// share one: the inode (an atomic rewrite renames a new file into place)
// and the size tell them apart as well.
std::string Stamp(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return "?";
  return absl::StrCat(info.st_ino, ":", info.st_size, ":", info.st_mtim.tv_sec, ".",
                      info.st_mtim.tv_nsec);
}

}  // namespace

std::string DataSourceVersion(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error) return "";
  if (!fs::is_directory(status)) return Stamp(path);
  // A folder's entry count changes when a file moves in or out, whatever
  // the clock says.
  std::map<std::string, int64_t> entries;
  std::map<std::string, std::string> stamps;
  entries[path] = 0;
  for (fs::recursive_directory_iterator
           it(path, fs::directory_options::skip_permission_denied, error),
       end;
       !error && it != end; it.increment(error)) {
    ++entries[it->path().parent_path().string()];
    // Its own error code: an entry that vanished or a dangling link must
    // not end the walk.
    std::error_code entry_error;
    if (it->is_directory(entry_error)) {
      entries.emplace(it->path().string(), 0);
    } else if (absl::EndsWithIgnoreCase(it->path().filename().string(), ".csv")) {
      stamps[it->path().string()] = Stamp(it->path().string());
    }
  }
  std::string version;
  for (const auto& [folder, count] : entries) {
    absl::StrAppend(&version, folder, " ", count, " ", Stamp(folder), "\n");
  }
  for (const auto& [file, stamp] : stamps) absl::StrAppend(&version, file, " ", stamp, "\n");
  return version;
}

}  // namespace fedmi
