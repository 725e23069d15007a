#include "cli/scarce_labels.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/model_files.h"
#include "common/base/csv.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/data/image_data.h"

namespace fedmi::cli {

absl::StatusOr<SiteDataset> LoadSiteForModel(const ml::ModelConfig& config,
                                             const std::string& data_path) {
  SiteDataOptions load;
  load.val_fraction = 0;
  load.height = config.height;
  load.width = config.width;
  load.channels = config.channels;
  return LoadSiteDataset(data_path, load);
}

absl::StatusOr<ScoredSite> LoadAndScoreSite(const std::string& model_path,
                                            const std::string& data_path, AcquisitionMethod method,
                                            int mc_passes, uint64_t seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<ml::LocalModel> model, LoadModelFile(model_path));
  ScoredSite site;
  ASSIGN_OR_RETURN(site.data, LoadSiteForModel(model->config(), data_path));
  const ImageSet& pool = site.data.unlabelled.images;
  if (pool.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        data_path,
        " has no unlabelled images to rank (an npz keeps them in unlabelled_images, an image "
        "folder in unlabelled/; docs/scarce-labels.md)"));
  }
  ml::ScoreOptions options;
  options.mc_passes = NeedsMonteCarlo(method) ? mc_passes : 0;
  options.embeddings = NeedsEmbeddings(method);
  options.seed = seed;
  ASSIGN_OR_RETURN(ml::ImageScores scores, model->Score(pool, options));
  site.pool.rows = scores.rows;
  site.pool.num_classes = scores.num_classes;
  site.pool.probabilities = std::move(scores.probabilities);
  site.pool.mc_passes = scores.mc_passes;
  site.pool.mc_probabilities = std::move(scores.mc_probabilities);
  site.pool.embedding_dim = scores.embedding_dim;
  site.pool.embeddings = std::move(scores.embeddings);
  if (NeedsEmbeddings(method)) {
    ml::ScoreOptions labelled_options;
    labelled_options.embeddings = true;
    for (const ImageSet* labelled : {&site.data.train, &site.data.val}) {
      if (labelled->size() == 0) continue;
      ASSIGN_OR_RETURN(ml::ImageScores known, model->Score(*labelled, labelled_options));
      site.pool.labelled_embeddings.insert(site.pool.labelled_embeddings.end(),
                                           known.embeddings.begin(), known.embeddings.end());
    }
  }
  std::map<std::string, int64_t> first_of;
  site.duplicate.assign(pool.size(), false);
  for (int64_t row = 0; row < pool.size(); ++row) {
    if (!first_of.emplace(ImageId(pool, row), row).second) {
      site.duplicate[row] = true;
      ++site.duplicates;
    }
  }
  return site;
}

absl::StatusOr<FilledInList> ReadFilledInLabels(const std::string& path) {
  if (!Env::Default()->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("list ", path, " does not exist"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  int id_column = -1, label_column = -1;
  FilledInList list;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::vector<std::string> fields = CsvFields(lines[i]);
    if (id_column < 0) {
      id_column = CsvColumn(fields, "id");
      label_column = CsvColumn(fields, "label");
      if (id_column < 0 || label_column < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path,
                         " has no 'id' and 'label' columns in its first line; is it a list from "
                         "`fedmi al rank`?"));
      }
      continue;
    }
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    const size_t needed = static_cast<size_t>(std::max(id_column, label_column));
    if (fields.size() <= needed || fields[label_column].empty()) {
      ++list.empty_rows;
      continue;
    }
    list.rows.push_back({fields[id_column], fields[label_column], static_cast<int64_t>(i + 1)});
  }
  return list;
}

}  // namespace fedmi::cli
