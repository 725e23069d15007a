#include "common/runspec/run_spec_json.h"

#include <cmath>
#include <string>
#include <vector>

#include "common/runspec/dp_spec.h"
#include "common/runspec/model_task.h"
#include "common/runspec/training_recipe.h"

namespace fedmi {
namespace {

nlohmann::json Number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json RunSpecToJson(const v1::RunSpec& spec) {
  nlohmann::json json = {{"model", spec.model()},
                         {"strategy", spec.strategy()},
                         {"rounds", spec.rounds()},
                         {"min_sites", spec.min_sites()},
                         {"max_sites", spec.max_sites()},
                         {"local_epochs", spec.local_epochs()},
                         {"batch_size", spec.batch_size()},
                         {"lr", Number(spec.lr())},
                         {"optimizer", spec.optimizer()},
                         {"seed", spec.seed()},
                         {"num_classes", spec.num_classes()},
                         {"synthetic_params", spec.synthetic_params()},
                         {"round_timeout_s", Number(spec.round_timeout_s())},
                         {"max_round_retries", spec.max_round_retries()},
                         {"secure_aggregation", spec.secure_aggregation()},
                         {"secagg",
                          {{"threshold", spec.secagg().threshold()},
                           {"neighbours", spec.secagg().neighbours()},
                           {"clip", Number(spec.secagg().clip())},
                           {"max_examples", spec.secagg().max_examples()}}},
                         {"dp", DpSettingsToJson(spec.dp())},
                         {"training", TrainingSettingsToJson(spec)}};
  // What an auditor needs to know which code and which starting weights ran
  // on the sites' data; absent for runs that set none of it.
  if (!spec.model_file_sha256().empty()) {
    json["model_file_sha256"] = spec.model_file_sha256();
    json["task"] = IsSegmentationRun(spec) ? "segmentation" : "classification";
  }
  if (spec.has_transfer()) {
    const v1::TransferSettings& transfer = spec.transfer();
    json["transfer"] = {
        {"init_weights_sha256", transfer.init_weights_sha256()},
        {"init_allow_partial", transfer.init_allow_partial()},
        {"freeze_prefixes", std::vector<std::string>(transfer.freeze_prefixes().begin(),
                                                     transfer.freeze_prefixes().end())},
        {"unfreeze_after_round", transfer.unfreeze_after_round()}};
  }
  if (spec.has_robust()) {
    const v1::RobustAggregation& robust = spec.robust();
    json["robust"] = {
        {"trim_fraction",
         robust.has_trim_fraction() ? Number(robust.trim_fraction()) : nlohmann::json(nullptr)},
        {"byzantine_sites", robust.has_byzantine_sites() ? nlohmann::json(robust.byzantine_sites())
                                                         : nlohmann::json(nullptr)},
        {"multikrum_selected", robust.multikrum_selected()},
        {"norm_bound",
         robust.has_norm_bound() ? Number(robust.norm_bound()) : nlohmann::json(nullptr)}};
  }
  if (spec.has_server_optimizer()) {
    const v1::ServerOptimizerSettings& settings = spec.server_optimizer();
    auto optional = [](bool has, double value) {
      return has ? Number(value) : nlohmann::json(nullptr);
    };
    json["server_optimizer"] = {
        {"kind", settings.kind()},
        {"server_lr", optional(settings.has_server_lr(), settings.server_lr())},
        {"momentum", optional(settings.has_momentum(), settings.momentum())},
        {"beta1", optional(settings.has_beta1(), settings.beta1())},
        {"beta2", optional(settings.has_beta2(), settings.beta2())},
        {"tau", optional(settings.has_tau(), settings.tau())}};
  }
  if (spec.scaffold()) json["scaffold"] = true;
  if (spec.has_unet()) {
    json["unet"] = {{"base_width", spec.unet().base_width()}, {"depth", spec.unet().depth()}};
  }
  return json;
}

}  // namespace fedmi
