#include "client/active_learning.h"

#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/base/csv.h"
#include "common/base/env.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/plot/heatmap_overlay.h"

namespace fedmi {
namespace {

absl::Status DrawRankSheet(const ImageSet& pool, const std::vector<AcquiredImage>& chosen,
                           const std::string& path) {
  HeatmapOverlayOptions look;
  look.side = 84;
  look.alpha = 0;
  look.caption_scale = 1;
  const std::vector<float> no_heat(pool.height * pool.width, 0.0f);
  std::vector<Canvas> tiles;
  tiles.reserve(chosen.size());
  for (size_t rank = 0; rank < chosen.size(); ++rank) {
    const AcquiredImage& image = chosen[rank];
    ASSIGN_OR_RETURN(
        Canvas tile,
        DrawHeatmapOverlay(
            pool.pixels.data() + image.row * pool.ImageBytes(), pool.height, pool.width,
            pool.channels, no_heat, std::nullopt,
            {absl::StrCat("rank ", rank + 1), absl::StrFormat("score %.3f", image.score)}, look));
    tiles.push_back(std::move(tile));
  }
  return DrawContactSheet(tiles, 10).SavePng(path);
}

}  // namespace

absl::StatusOr<ScoredPool> ScorePool(ml::LocalModel& model, const SiteDataset& data,
                                     AcquisitionMethod method, int mc_passes, uint64_t seed) {
  const ImageSet& pool = data.unlabelled.images;
  if (pool.size() == 0) {
    return absl::InvalidArgumentError(
        "the site has no unlabelled images to rank (an npz keeps them in unlabelled_images, an "
        "image folder in unlabelled/, DICOM as labels.csv rows with an empty label; "
        "docs/scarce-labels.md)");
  }
  ml::ScoreOptions options;
  options.mc_passes = NeedsMonteCarlo(method) ? mc_passes : 0;
  options.embeddings = NeedsEmbeddings(method);
  options.seed = seed;
  ASSIGN_OR_RETURN(ml::ImageScores scores, model.Score(pool, options));
  ScoredPool scored;
  PoolView& view = scored.view;
  view.rows = scores.rows;
  view.num_classes = scores.num_classes;
  view.probabilities = std::move(scores.probabilities);
  view.mc_passes = scores.mc_passes;
  view.mc_probabilities = std::move(scores.mc_probabilities);
  view.embedding_dim = scores.embedding_dim;
  view.embeddings = std::move(scores.embeddings);
  if (NeedsEmbeddings(method)) {
    ml::ScoreOptions labelled_options;
    labelled_options.embeddings = true;
    for (const ImageSet* labelled : {&data.train, &data.val}) {
      if (labelled->size() == 0) continue;
      ASSIGN_OR_RETURN(ml::ImageScores known, model.Score(*labelled, labelled_options));
      view.labelled_embeddings.insert(view.labelled_embeddings.end(), known.embeddings.begin(),
                                      known.embeddings.end());
    }
  }
  std::map<std::string, int64_t> first_of;
  scored.duplicate.assign(pool.size(), false);
  for (int64_t row = 0; row < pool.size(); ++row) {
    if (!first_of.emplace(ImageId(pool, row), row).second) {
      scored.duplicate[row] = true;
      ++scored.duplicates;
    }
  }
  return scored;
}

absl::Status WriteToLabelList(const UnlabelledPool& pool, const PoolView& view,
                              const std::vector<AcquiredImage>& chosen, AcquisitionMethod method,
                              const std::string& csv_path, const std::string& sheet_path) {
  if (static_cast<int64_t>(pool.ids.size()) != pool.images.size() ||
      view.rows != pool.images.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the pool has ", pool.images.size(), " images, ",
                                                   pool.ids.size(), " ids and ", view.rows,
                                                   " scored rows"));
  }
  const int64_t k = view.num_classes;
  std::string csv = "rank,id,score,method,predicted,probability,label\n";
  for (size_t rank = 0; rank < chosen.size(); ++rank) {
    const AcquiredImage& image = chosen[rank];
    const float* p = view.probabilities.data() + image.row * k;
    int64_t predicted = 0;
    for (int64_t c = 1; c < k; ++c) predicted = p[c] > p[predicted] ? c : predicted;
    absl::StrAppend(&csv, rank + 1, ",", CsvField(pool.ids[image.row]), ",",
                    absl::StrFormat("%.6f", image.score), ",", AcquisitionMethodName(method), ",",
                    predicted, ",", absl::StrFormat("%.4f", p[predicted]), ",\n");
  }
  RETURN_IF_ERROR(WriteFileAtomically(*Env::Default(), csv_path, csv));
  return DrawRankSheet(pool.images, chosen, sheet_path);
}

absl::StatusOr<ActiveLearningOptions> ActiveLearningFromFlags(const std::string& rounds,
                                                              const std::string& budget,
                                                              const std::string& method) {
  ActiveLearningOptions options;
  for (absl::string_view item : absl::StrSplit(rounds, ',', absl::SkipWhitespace())) {
    int32_t round = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(item), &round) || round < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--al-rounds '", rounds, "' is not a comma-separated list of rounds from 1 (4,7)"));
    }
    options.rounds.insert(round);
  }
  absl::StatusOr<AcquisitionBudget> parsed_budget = ParseAcquisitionBudget(budget);
  if (!parsed_budget.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--al-", parsed_budget.status().message()));
  }
  options.budget = *parsed_budget;
  absl::StatusOr<AcquisitionMethod> parsed_method = ParseAcquisitionMethod(method);
  if (!parsed_method.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--al-method: ", parsed_method.status().message()));
  }
  options.method = *parsed_method;
  return options;
}

absl::StatusOr<std::optional<WrittenList>> RankPoolForRound(ml::LocalModel& model,
                                                            const SiteDataset& data,
                                                            const ActiveLearningOptions& options,
                                                            int64_t run_id, int32_t listed_round) {
  if (data.unlabelled.images.size() == 0) return std::optional<WrittenList>();
  WrittenList list;
  const std::string stem = (std::filesystem::path(options.out_dir) /
                            absl::StrCat("run-", run_id, "-round-", listed_round))
                               .string();
  list.csv = absl::StrCat(stem, "-to-label.csv");
  list.sheet = absl::StrCat(stem, "-to-label.png");
  if (Env::Default()->FileExists(list.csv)) return std::optional<WrittenList>();
  std::error_code error;
  std::filesystem::create_directories(options.out_dir, error);
  if (error) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create the active-learning directory ",
                                                    options.out_dir, ": ", error.message()));
  }
  // Reproducible for a run and round, and different between rounds.
  const uint64_t seed =
      static_cast<uint64_t>(run_id) * 1000003 + static_cast<uint64_t>(listed_round);
  ASSIGN_OR_RETURN(ScoredPool scored,
                   ScorePool(model, data, options.method, options.mc_passes, seed));
  // As `fedmi al rank` counts it: labelled training images and the pool
  // (a daemon's validation images held out of a folder without a
  // validation split are not counted; a npz's own split never is).
  const int64_t budget = options.budget.Images(data.train.size() + data.unlabelled.images.size());
  ASSIGN_OR_RETURN(std::vector<AcquiredImage> chosen,
                   Acquire(options.method, scored.view, budget, seed, scored.duplicate));
  RETURN_IF_ERROR(
      WriteToLabelList(data.unlabelled, scored.view, chosen, options.method, list.csv, list.sheet));
  list.chosen = static_cast<int64_t>(chosen.size());
  list.unlabelled = data.unlabelled.images.size();
  return std::optional<WrittenList>(std::move(list));
}

void ActiveLearningLoop::AtRoundStart(ml::LocalModel& model, const SiteDataset& data,
                                      int64_t run_id, int32_t round) {
  auto listed = options_.rounds.upper_bound(round);
  if (listed == options_.rounds.begin()) return;
  const int32_t due = *std::prev(listed);
  int32_t& served = served_[run_id];
  if (due <= served) return;
  served = due;
  absl::StatusOr<std::optional<WrittenList>> list =
      RankPoolForRound(model, data, options_, run_id, due);
  if (!list.ok()) {
    FEDMI_LOG(ERROR) << "run " << run_id << " round " << round
                     << ": cannot rank the unlabelled images for labelling: "
                     << list.status().message();
    return;
  }
  if (!list->has_value()) {
    FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": "
                    << (data.unlabelled.images.size() == 0
                            ? "no unlabelled images left to rank"
                            : absl::StrCat("the list for listed round ", due, " is already in ",
                                           options_.out_dir, " (kept)"));
    return;
  }
  const WrittenList& written = **list;
  FEDMI_LOG(INFO) << "run " << run_id << " round " << round << ": the " << written.chosen
                  << " images to label next (of " << written.unlabelled << " unlabelled, by "
                  << AcquisitionMethodName(options_.method)
                  << (due == round ? "" : absl::StrCat(", for listed round ", due)) << ") are in "
                  << written.csv << ", thumbnails in " << written.sheet
                  << "; fill in the label column, then: fedmi al import " << written.csv
                  << " --data " << (options_.data_path.empty() ? "DATA" : options_.data_path)
                  << " (this site trains on the new labels from the next round after that)";
}

}  // namespace fedmi
