#include "cli/sim_compare_file.h"

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

absl::StatusOr<std::vector<CompareEntry>> Parse(const std::string& text) {
  return ParseCompareFile(text, "s.toml");
}

TEST(SimCompareFileTest, ReadsEntriesWithFlagsAsAStringOrAnArray) {
  ASSERT_OK_AND_ASSIGN(std::vector<CompareEntry> entries, Parse(R"(# two strategies
[[strategy]]
name = "FedAvg"
flags = "--strategy fedavg"

[[strategy]]
name = "  Trimmed mean "
flags = ["--strategy", "trimmed_mean", "--trim-fraction=0.2"]

[[strategy]]
name = "as given"
)"));
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "FedAvg");
  EXPECT_THAT(entries[0].args, ElementsAre("--strategy", "fedavg"));
  EXPECT_EQ(entries[0].where, "s.toml:2");
  EXPECT_EQ(entries[1].name, "Trimmed mean");
  EXPECT_THAT(entries[1].args, ElementsAre("--strategy", "trimmed_mean", "--trim-fraction=0.2"));
  EXPECT_EQ(entries[1].where, "s.toml:6");
  // No flags: the command line as it is.
  EXPECT_EQ(entries[2].name, "as given");
  EXPECT_THAT(entries[2].args, IsEmpty());
}

TEST(SimCompareFileTest, SplitsFlagsLikeAShellWithoutExpansions) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> args,
                       SplitFlags("  --a 1\t--b 'x y' --c=\"q \\\" \\\\ $HOME\" d''e "));
  EXPECT_THAT(args, ElementsAre("--a", "1", "--b", "x y", "--c=q \" \\ $HOME", "de"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> none, SplitFlags("   "));
  EXPECT_THAT(none, IsEmpty());
  // An empty quoted word is still a word.
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> empty, SplitFlags("--x ''"));
  EXPECT_THAT(empty, ElementsAre("--x", ""));
  EXPECT_THAT(SplitFlags("--lr '0.1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unclosed ' in flags")));
}

TEST(SimCompareFileTest, RefusesFlagsThatWouldChangeTheSplitSeedsOrOutputs) {
  EXPECT_THAT(CheckEntryFlags({"--strategy", "median", "--lr", "0.01"}), IsOk());
  EXPECT_THAT(CheckEntryFlags({"--strategy", "median", "--sites", "5"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--sites cannot differ between strategies")));
  EXPECT_THAT(CheckEntryFlags({"--seed=3"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--seed cannot differ")));
  for (const char* flag : {"--rounds", "--data", "--partition", "--alpha", "--work-dir",
                           "--json-out", "--threads", "--compare", "--seeds"}) {
    EXPECT_THAT(CheckEntryFlags({flag, "x"}), StatusIs(absl::StatusCode::kInvalidArgument)) << flag;
  }
  // Inside a file the error names the entry and its line.
  EXPECT_THAT(Parse("[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"b\"\n"
                    "flags = \"--strategy median --partition iid\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("s.toml:3: strategy 'b': --partition cannot differ")));
}

TEST(SimCompareFileTest, NamesWhatIsWrongWithABadFile) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"[[strategy]\nname = \"a\"\n", "s.toml:1: TOML syntax error"},
      {"", "no strategies to compare"},
      {"# nothing but a comment\n", "no strategies to compare"},
      {"strategy = []\n", "no strategies to compare"},
      {"rounds = 3\n[[strategy]]\nname = \"a\"\n", "s.toml:1: unknown key 'rounds'"},
      {"strategy = \"fedavg\"\n", "s.toml:1: 'strategy' must be a list of [[strategy]] tables"},
      {"[strategy]\nname = \"a\"\n", "'strategy' must be a list of [[strategy]] tables"},
      {"[[strategy]]\nname = \"a\"\nflag = \"--strategy median\"\n",
       "s.toml:3: unknown key 'flag' in a [[strategy]] entry"},
      {"[[strategy]]\nflags = \"--strategy median\"\n", "s.toml:1: a [[strategy]] entry needs"},
      {"[[strategy]]\nname = \"  \"\n", "needs a non-empty 'name'"},
      {"[[strategy]]\nname = 3\n", "s.toml:2: 'name' must be a string"},
      {"[[strategy]]\nname = \"a\"\nflags = 3\n", "s.toml:3: 'flags' must be a string"},
      {"[[strategy]]\nname = \"a\"\nflags = [\"--lr\", 0.1]\n",
       "'flags' must be an array of strings"},
      {"[[strategy]]\nname = \"a\"\nflags = \"--lr '0.1\"\n", "s.toml:3: unclosed '"},
      {"[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"a\"\n",
       "s.toml:3: strategy name 'a' is given twice"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Parse(c.text), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.text;
  }
}

TEST(SimCompareFileTest, LoadsAFileAndSaysWhenItIsMissing) {
  ScratchDir dir;
  std::ofstream(dir.Join("s.toml")) << "[[strategy]]\nname = \"Median\"\nflags = \"--strategy "
                                       "median\"\n";
  ASSERT_OK_AND_ASSIGN(std::vector<CompareEntry> entries, LoadCompareFile(dir.Join("s.toml")));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].where, dir.Join("s.toml") + ":1");
  EXPECT_THAT(LoadCompareFile(dir.Join("missing.toml")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.toml")));
}

TEST(SimCompareFileTest, ResolvesSeedsFromAListACountOrTheSeed) {
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> listed, ResolveSeeds(" 3, 0 ,7", 0, 42));
  EXPECT_THAT(listed, ElementsAre(3, 0, 7));
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> counted, ResolveSeeds("", 3, 5));
  EXPECT_THAT(counted, ElementsAre(5, 6, 7));
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> one, ResolveSeeds("", 0, 9));
  EXPECT_THAT(one, ElementsAre(9));

  EXPECT_THAT(ResolveSeeds("0,1", 2, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not both")));
  EXPECT_THAT(ResolveSeeds("0,x", 0, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'x' is not a seed")));
  EXPECT_THAT(ResolveSeeds("-1", 0, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveSeeds("1,,2", 0, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveSeeds("1,2,1", 0, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seed 1 is listed twice")));
}

TEST(SimCompareFileTest, SlugsAreSafeFileNames) {
  EXPECT_EQ(EntrySlug("Trimmed mean 0.2"), "trimmed-mean-0-2");
  EXPECT_EQ(EntrySlug("  FedAvg!  "), "fedavg");
  EXPECT_EQ(EntrySlug("../.."), "strategy");
}

}  // namespace
}  // namespace fedmi::cli
