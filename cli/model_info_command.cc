// `fedmi model info FILE [--json]`: the model card of a .pt, .ptl or
// .safetensors file (cli/model_card.h). A .safetensors file is read
// without model code; .pt and .ptl files need the ModelRunner.
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_card.h"
#include "cli/model_export.h"
#include "cli/model_runner.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/tensor/safetensors.h"

namespace fedmi::cli {
namespace {

absl::StatusOr<std::map<std::string, std::string>> ReadMetadata(const std::string& path,
                                                                ModelRunner* runner) {
  ASSIGN_OR_RETURN(ModelFileKind kind, ModelFileKindOf(path));
  if (!Env::Default()->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("model file ", path, " does not exist"));
  }
  if (kind == ModelFileKind::kSafetensors) {
    std::map<std::string, std::string> metadata;
    RETURN_IF_ERROR(ReadSafetensors(path, &metadata).status());
    return metadata;
  }
  if (runner == nullptr) {
    absl::Status refused = TrainingUnavailableError("fedmi model info on a .pt or .ptl file");
    return absl::Status(refused.code(), absl::StrCat(refused.message(),
                                                     "; a .safetensors file needs no model code"));
  }
  return runner->ReadModelMetadata(path);
}

int ShowModelInfo(const GlobalOptions& global, const std::string& path, ModelRunner* runner) {
  if (absl::Status kind = ModelFileKindOf(path).status(); !kind.ok()) {
    return ReportUsageError(std::string(kind.message()));
  }
  absl::StatusOr<nlohmann::json> card = [&]() -> absl::StatusOr<nlohmann::json> {
    ASSIGN_OR_RETURN(const auto metadata, ReadMetadata(path, runner));
    return ModelCardFromMetadata(metadata, path);
  }();
  if (!card.ok()) {
    // Every refusal names the file, whichever loader gave it.
    const absl::Status& status = card.status();
    if (absl::StrContains(status.message(), path)) return ReportError(status);
    return ReportError(absl::Status(status.code(), absl::StrCat(path, ": ", status.message())));
  }
  if (global.json) {
    PrintJsonLine(*card);
    return kExitOk;
  }
  try {
    std::cout << path << "\n" << ModelCardText(*card) << std::flush;
  } catch (const nlohmann::json::exception& e) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
        path, ": its model card has a field of the wrong type (corrupted?): ", e.what())));
  }
  return kExitOk;
}

}  // namespace

void AddModelInfoCommand(CLI::App* model, GlobalOptions& global, CommandResult& result,
                         std::shared_ptr<ModelRunner> runner) {
  auto path = std::make_shared<std::string>();
  CLI::App* info = model->add_subcommand(
      "info",
      "Print the model card of a .pt, .ptl or .safetensors file: architecture, input and its "
      "normalization, class names, operating threshold, the run it came from (spec hash, "
      "strategy, sites, secure aggregation, differential privacy), validation metrics, fedmi "
      "version and creation time");
  info->add_option("FILE", *path, "model file: *.pt, *.ptl or *.safetensors")->required();
  AddJsonFlag(info, global);
  info->callback([&global, &result, path, runner] {
    RunCommand(result, [&] { return ShowModelInfo(global, *path, runner.get()); });
  });
}

}  // namespace fedmi::cli
