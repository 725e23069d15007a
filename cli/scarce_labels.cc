#include "cli/scarce_labels.h"

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
  absl::StatusOr<ScoredPool> scored = ScorePool(*model, site.data, method, mc_passes, seed);
  if (!scored.ok()) {
    return absl::Status(scored.status().code(),
                        absl::StrCat(data_path, ": ", scored.status().message()));
  }
  site.scored = *std::move(scored);
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
