#include "common/data/data_version.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

// The changes `fedmi al import` makes, each seen at once, however close in
// time to the last reading (file times tick in milliseconds).
TEST(DataSourceVersionTest, ChangesWithEveryImportAndOnlyThen) {
  ScratchDir dir;
  const std::string folder = dir.Join("site");
  fs::create_directories(folder + "/unlabelled");
  fs::create_directories(folder + "/normal");
  std::ofstream(folder + "/unlabelled/a.png") << "png";
  std::ofstream(folder + "/normal/b.png") << "png";
  const std::string before = DataSourceVersion(folder);
  EXPECT_FALSE(before.empty());
  EXPECT_EQ(DataSourceVersion(folder), before);
  fs::rename(folder + "/unlabelled/a.png", folder + "/normal/a.png");
  const std::string moved = DataSourceVersion(folder);
  EXPECT_NE(moved, before);

  std::ofstream(folder + "/labels.csv") << "file,label\nx.dcm,\n";
  const std::string with_csv = DataSourceVersion(folder);
  EXPECT_NE(with_csv, moved);
  std::ofstream(folder + "/labels.tmp") << "file,label\nx.dcm,1\n";
  fs::rename(folder + "/labels.tmp", folder + "/labels.csv");
  EXPECT_NE(DataSourceVersion(folder), with_csv);

  const std::string npz = dir.Join("site.npz");
  std::ofstream(npz) << "0123";
  const std::string npz_before = DataSourceVersion(npz);
  EXPECT_EQ(DataSourceVersion(npz), npz_before);
  std::ofstream(npz + ".tmp") << "0123";  // same size, a new file renamed in
  fs::rename(npz + ".tmp", npz);
  EXPECT_NE(DataSourceVersion(npz), npz_before);

  EXPECT_EQ(DataSourceVersion(dir.Join("missing")), "");
}

}  // namespace
}  // namespace fedmi
