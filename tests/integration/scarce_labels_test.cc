// Active learning and pseudo-labels end to end, with the real binaries:
// shards with 10% of their labels, a federation whose sites also learn from
// their unlabelled images, `fedmi al rank` on the global model, a simulated
// radiologist's labels imported with `fedmi al import`, and a second
// federation on the grown labelled sets. Then the adversary's view: every
// file the coordinator wrote (its state and its log) is searched for the
// unlabelled images' bytes and for their ids. Nothing of the pool may be
// there.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/csv.h"
#include "common/data/image_data.h"
#include "common/data/npz.h"
#include "common/data/unlabelled_data.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// What an attacker holding the coordinator's disk might look for.
struct Needles {
  std::vector<std::string> images;  // raw bytes of each unlabelled image
  std::vector<std::string> ids;     // the images' ids, as lists and logs write them
};

// Every needle found in a file under `dir`, as "<file>: <what>".
std::vector<std::string> Search(const fs::path& dir, const Needles& needles) {
  std::vector<std::string> found;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    absl::StatusOr<std::string> bytes = ReadFileToString(it->path().string());
    if (!bytes.ok()) continue;
    for (size_t i = 0; i < needles.images.size(); ++i) {
      if (bytes->find(needles.images[i]) != std::string::npos) {
        found.push_back(absl::StrCat(it->path().string(), ": unlabelled image ", i));
      }
    }
    for (const std::string& id : needles.ids) {
      if (bytes->find(id) != std::string::npos) {
        found.push_back(absl::StrCat(it->path().string(), ": id ", id));
      }
    }
  }
  return found;
}

std::string SimCommand(const std::string& shards, const std::string& data, const std::string& work,
                       const std::string& extra = "") {
  return absl::StrCat(Binary("fedmi"), " sim --shards ", shards,
                      " --sites 3 --rounds 2 --semi-supervised pseudo-label --data ", data,
                      " --work-dir ", work, " --json ", extra);
}

TEST(ScarceLabelsTest, AnActiveLearningRoundLeavesNothingOfThePoolAtTheCoordinator) {
  ScratchDir scratch;
  const std::string data = DataPath(scratch.path());
  const std::string shards = scratch.Join("shards");
  CommandOutput out = RunCommand(absl::StrCat(
      Binary("fedmi"), " data split --input ", data,
      " --sites 3 --partition iid --labelled-fraction 0.1 --seed 4 --out ", shards, " --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  const nlohmann::json split = nlohmann::json::parse(LastLine(out.stdout_text));
  ASSERT_EQ(split["sites"].size(), 3u);
  Needles needles;
  for (int site = 1; site <= 3; ++site) {
    const std::string shard = absl::StrCat(shards, "/site-", site, ".npz");
    ASSERT_OK_AND_ASSIGN(auto arrays, ReadNpz(shard));
    const NpyArray& pool = arrays.at(kNpzUnlabelledImages);
    const size_t bytes = static_cast<size_t>(pool.shape[1] * pool.shape[2]);
    ASSERT_GT(pool.shape[0], 0);
    EXPECT_EQ(split["sites"][site - 1]["unlabelled"], pool.shape[0]);
    for (int64_t row = 0; row < pool.shape[0]; ++row) {
      needles.images.emplace_back(pool.data.data() + row * bytes, bytes);
    }
  }

  const std::string first = scratch.Join("first");
  out = RunCommand(SimCommand(shards, data, first, "--round-models 1"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  // The early round's model, for a label audit, is round 1's.
  const nlohmann::json first_run = nlohmann::json::parse(LastLine(out.stdout_text));
  ASSERT_EQ(first_run["round_models"].size(), 1u);
  EXPECT_EQ(first_run["round_models"][0], first + "/round-1-model.pt");
  CommandOutput info =
      RunCommand(absl::StrCat(Binary("fedmi"), " model info ", first, "/round-1-model.pt --json"));
  ASSERT_EQ(info.exit_code, 0) << info.stdout_text;
  EXPECT_EQ(nlohmann::json::parse(LastLine(info.stdout_text))["run"]["round"], 1);
  std::ifstream site_log(first + "/logs/site-1.log");
  const std::string site_text((std::istreambuf_iterator<char>(site_log)), {});
  EXPECT_THAT(site_text, HasSubstr("pseudo-labelled ones"));

  const std::string shard = shards + "/site-1.npz";
  const std::string list = scratch.Join("to-label.csv");
  out = RunCommand(
      absl::StrCat(Binary("fedmi"), " al rank --model ", first, "/final-model.pt --data ", shard,
                   " --budget 5% --method bald --mc-passes 5 --out ", list, " --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  const int64_t chosen = nlohmann::json::parse(LastLine(out.stdout_text))["chosen"];
  ASSERT_GT(chosen, 0);

  // The simulated radiologist answers from the truth file; every site's
  // pool ids are needles.
  std::map<std::string, std::string> truth;
  for (int site = 1; site <= 3; ++site) {
    std::ifstream in(absl::StrCat(shards, "/site-", site, ".truth.csv"));
    for (std::string line; std::getline(in, line);) {
      const std::vector<std::string> fields = CsvFields(line);
      if (fields.size() != 2 || fields[0] == "id") continue;
      needles.ids.push_back(fields[0]);
      if (site == 1) truth[fields[0]] = fields[1];
    }
  }
  ASSERT_GT(needles.ids.size(), 1000u);
  std::string filled;
  {
    std::ifstream in(list);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> fields = CsvFields(line);
      if (fields.size() == 7 && fields[0] != "rank") fields[6] = truth.at(fields[1]);
      filled += absl::StrCat(absl::StrJoin(fields, ","), "\n");
    }
  }
  std::ofstream(scratch.Join("filled.csv")) << filled;
  out = RunCommand(absl::StrCat(Binary("fedmi"), " al import ", scratch.Join("filled.csv"),
                                " --data ", shard, " --json"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  // An image PneumoniaMNIST holds twice is ranked once and labelled twice.
  const int64_t imported = nlohmann::json::parse(LastLine(out.stdout_text))["imported"];
  EXPECT_GE(imported, chosen);
  EXPECT_LE(imported, chosen + 3);

  // The second federation runs the loop inside the run: every site ranks
  // its pool at the start of round 2 and writes a list for its radiologist,
  // next to its own kit; nothing is labelled by the site.
  const std::string second = scratch.Join("second");
  out = RunCommand(
      SimCommand(shards, data, second, "--al-rounds 2 --al-budget 4 --al-method entropy"));
  ASSERT_EQ(out.exit_code, 0) << out.stdout_text;
  std::set<std::string> pool_ids(needles.ids.begin(), needles.ids.end());
  int lists = 0;
  for (const auto& entry : fs::recursive_directory_iterator(second)) {
    if (entry.path().filename() != "run-1-round-2-to-label.csv") continue;
    ++lists;
    EXPECT_EQ(entry.path().parent_path().filename(), "active-learning");
    std::ifstream in(entry.path());
    int rows = 0;
    for (std::string line; std::getline(in, line);) {
      const std::vector<std::string> fields = CsvFields(line);
      if (fields[0] == "rank") continue;
      ++rows;
      EXPECT_EQ(pool_ids.count(fields[1]), 1u) << fields[1];
      EXPECT_EQ(fields[6], "");
    }
    EXPECT_EQ(rows, 4) << entry.path();
    EXPECT_TRUE(fs::exists(fs::path(entry.path()).replace_extension(".png")));
  }
  EXPECT_EQ(lists, 3);

  // The search works: a file holding one image is found.
  const fs::path control = scratch.Join("control");
  fs::create_directories(control);
  std::ofstream(control / "planted.bin") << "x" << needles.images[7] << "y";
  EXPECT_EQ(Search(control, needles).size(), 1u);

  // The coordinator's state, spool and log, after both runs.
  for (const std::string& work : {first, second}) {
    ASSERT_TRUE(fs::is_directory(work + "/coordinator")) << work;
    EXPECT_THAT(Search(work + "/coordinator", needles), ::testing::IsEmpty()) << work;
    for (const auto& entry : fs::directory_iterator(work + "/logs")) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("coordinator", 0) != 0) continue;
      ASSERT_OK_AND_ASSIGN(std::string log, ReadFileToString(entry.path().string()));
      for (const std::string& id : needles.ids) {
        EXPECT_EQ(log.find(id), std::string::npos) << name << " names " << id;
      }
    }
  }
}

}  // namespace
}  // namespace fedmi
