// Active learning at a site: the global model's view of the site's
// unlabelled pool, the images a radiologist should label next, and the list
// and contact sheet the site's operator fills in. Shared by `fedmi al rank`
// (between runs) and the site daemon's in-run loop (fedmi-client
// --al-rounds). Nothing here labels an image: labels join the site's data
// only through `fedmi al import`, run by the site's operator.
#ifndef FEDMI_CLIENT_ACTIVE_LEARNING_H_
#define FEDMI_CLIENT_ACTIVE_LEARNING_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/ml/local_model.h"
#include "common/data/dataset.h"
#include "common/evaluation/acquisition.h"

namespace fedmi {

struct ScoredPool {
  PoolView view;  // the model's view of data.unlabelled
  // Per pool row: an equal copy (same ImageId) of an earlier row, which
  // would be labelled along with it and so is never chosen.
  std::vector<bool> duplicate;
  int64_t duplicates = 0;
};

// Scores the site's unlabelled pool as `method` needs (Monte-Carlo passes
// for bald, embeddings of the pool and of the labelled images for coreset).
// InvalidArgument when the site has no unlabelled images.
absl::StatusOr<ScoredPool> ScorePool(ml::LocalModel& model, const SiteDataset& data,
                                     AcquisitionMethod method, int mc_passes, uint64_t seed);

// Writes `csv_path` (rank,id,score,method,predicted,probability,label; the
// label column empty, for the radiologist) atomically, and `sheet_path`, a
// contact sheet of the chosen images with their rank and score.
absl::Status WriteToLabelList(const UnlabelledPool& pool, const PoolView& view,
                              const std::vector<AcquiredImage>& chosen, AcquisitionMethod method,
                              const std::string& csv_path, const std::string& sheet_path);

// The in-run loop (fedmi-client --al-rounds): at the start of each listed
// round the site ranks its pool with the round's global model and writes a
// list for its radiologist. What is labelled joins training once the
// operator runs `fedmi al import`: the site reads its data again at the
// next round that starts after its data changed.
struct ActiveLearningOptions {
  std::set<int32_t> rounds;  // 1-based; empty: off
  AcquisitionBudget budget;
  AcquisitionMethod method = AcquisitionMethod::kBald;
  int mc_passes = 20;
  std::string out_dir = "active-learning";
  std::string data_path;  // for the import command the log suggests

  bool active() const { return !rounds.empty(); }
};

// The fedmi-client flags as options: `rounds` comma-separated rounds >= 1
// ("4,7"), `budget` as ParseAcquisitionBudget takes it, `method` an
// acquisition method's name. InvalidArgument naming the flag at fault.
absl::StatusOr<ActiveLearningOptions> ActiveLearningFromFlags(const std::string& rounds,
                                                              const std::string& budget,
                                                              const std::string& method);

struct WrittenList {
  std::string csv;
  std::string sheet;
  int64_t chosen = 0;
  int64_t unlabelled = 0;
};

// Ranks the site's unlabelled images with `model` (holding the global
// weights of the round being trained) and writes
// <out_dir>/run-<run_id>-round-<listed_round>-to-label.csv and .png. A list
// already there is kept, not overwritten (the radiologist may be filling
// it in; a restarted site comes back to it): nullopt then, and when the
// site has no unlabelled image.
absl::StatusOr<std::optional<WrittenList>> RankPoolForRound(ml::LocalModel& model,
                                                            const SiteDataset& data,
                                                            const ActiveLearningOptions& options,
                                                            int64_t run_id, int32_t listed_round);

// The site daemon's loop. A site trains only in the rounds it is picked
// for, so it ranks at the first round it trains at or after a listed round,
// once however many listed rounds it missed, and names the list after the
// latest listed round reached. Never fails the round: the list is for the site's
// operator, and training goes on without it; what happened is logged.
// Thread-compatible (the daemon's task thread).
class ActiveLearningLoop {
 public:
  explicit ActiveLearningLoop(ActiveLearningOptions options) : options_(std::move(options)) {}

  bool active() const { return options_.active(); }

  // Called when round `round` of run `run_id` starts training, `model`
  // holding its global weights.
  void AtRoundStart(ml::LocalModel& model, const SiteDataset& data, int64_t run_id, int32_t round);

 private:
  ActiveLearningOptions options_;
  std::map<int64_t, int32_t> served_;  // per run: the last listed round served
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_ACTIVE_LEARNING_H_
