// `fedmi data phantoms` through the CLI11 app main() builds: the npz it
// writes loads as segmentation data, the seed reproduces it, and bad
// fractions are usage errors.
#include <string>

#include "common/data/image_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli/cli_harness.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;

TEST(DataPhantomsTest, WritesAnNpzThatLoadsWithMasks) {
  ScratchDir dir;
  const std::string path = dir.Join("phantoms.npz");
  CliOutcome outcome =
      RunCliCommands(AddDataCommands, "data",
                     {"phantoms", "--out", path, "--count", "10", "--size", "32", "--seed", "4",
                      "--split-fractions", "0.6,0.2,0.2", "--json"});
  ASSERT_EQ(outcome.exit_code, kExitOk) << outcome.err;
  const nlohmann::json json = outcome.Json();
  EXPECT_EQ(json["train"], 6);
  EXPECT_EQ(json["val"], 2);
  EXPECT_EQ(json["test"], 2);
  ASSERT_OK_AND_ASSIGN(ImageSet test, LoadNpzSplit(path, "test", /*with_masks=*/true));
  EXPECT_EQ(test.size(), 2);
  EXPECT_EQ(test.height, 32);
  EXPECT_TRUE(test.has_masks());

  const std::string again = dir.Join("again.npz");
  ASSERT_EQ(RunCliCommands(AddDataCommands, "data",
                           {"phantoms", "--out", again, "--count", "10", "--size", "32", "--seed",
                            "4", "--split-fractions", "0.6,0.2,0.2"})
                .exit_code,
            kExitOk);
  EXPECT_EQ(ReadFileToString(path).value(), ReadFileToString(again).value());
}

TEST(DataPhantomsTest, RefusesFractionsThatDoNotAddUp) {
  ScratchDir dir;
  CliOutcome outcome =
      RunCliCommands(AddDataCommands, "data",
                     {"phantoms", "--out", dir.Join("p.npz"), "--split-fractions", "0.5,0.5,0.5"});
  EXPECT_EQ(outcome.exit_code, kExitFailure);
  EXPECT_THAT(outcome.err, HasSubstr("split fractions"));
  outcome =
      RunCliCommands(AddDataCommands, "data",
                     {"phantoms", "--out", dir.Join("p.npz"), "--split-fractions", "0.5,0.5"});
  EXPECT_EQ(outcome.exit_code, kExitUsage);
  EXPECT_THAT(outcome.err, HasSubstr("three shares"));
}

}  // namespace
}  // namespace fedmi::cli
