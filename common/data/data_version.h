// A cheap fingerprint of a site's data source on disk, so that a site
// daemon notices when its operator changed the data during a run (labels
// imported with `fedmi al import`) and reads it again. Not a content hash:
// it reads no image.
#ifndef FEDMI_COMMON_DATA_DATA_VERSION_H_
#define FEDMI_COMMON_DATA_DATA_VERSION_H_

#include <string>

namespace fedmi {

// For a file (npz): its inode, size and modification time (an atomic
// rewrite renames a new file into place). For a folder (image folders,
// DICOM): the entry count, inode and modification time of every folder
// under it (a file moved from unlabelled/ into a class folder changes
// both folders' counts) and the inode, size and modification time of
// every .csv file (DICOM labels.csv). Empty when `path` cannot be read; two calls give the same
// string when nothing changed in between.
std::string DataSourceVersion(const std::string& path);

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_DATA_VERSION_H_
