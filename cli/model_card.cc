#include "cli/model_card.h"

#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/base/build_info.h"
#include "common/base/status.h"
#include "common/evaluation/operating_threshold.h"
#include "common/runspec/model_file_format.h"
#include "common/runspec/model_names.h"

namespace fedmi::cli {
namespace {

using nlohmann::json;

constexpr absl::string_view kDpPrefix = "dp_";

// A metadata value as JSON: a number when all of it reads as one.
json ValueOf(const std::string& text) {
  double number = 0;
  if (absl::SimpleAtod(text, &number) && std::isfinite(number)) return number;
  return text;
}

std::string TaskOf(const ModelFileInfo& info) {
  const ModelInfo* model = FindModelInfo(info.arch);
  const bool segmentation =
      info.segmentation || (model != nullptr && model->task == ModelTask::kSegmentation);
  return ModelTaskName(segmentation ? ModelTask::kSegmentation : ModelTask::kClassification);
}

json InputOf(int64_t height, int64_t width, int64_t channels) {
  return {{"height", height},
          {"width", width},
          {"channels", channels},
          {"pixel_range", {0, static_cast<int>(kPixelScale)}},
          {"layout", "N x C x H x W, or N x H x W (repeated over a colour model's channels)"}};
}

json Normalization() {
  return {
      {"formula", absl::StrFormat("(pixel / %g - %g) / %g", kPixelScale, kInputMean, kInputStd)},
      {"scale", kPixelScale},
      {"mean", kInputMean},
      {"std", kInputStd}};
}

// The dp_* entries without their prefix; null when there are none.
json PrivacyOf(const std::map<std::string, std::string>& metadata) {
  json privacy = nullptr;
  for (const auto& [key, value] : metadata) {
    if (!absl::StartsWith(key, kDpPrefix)) continue;
    privacy[key.substr(kDpPrefix.size())] = ValueOf(value);
  }
  return privacy;
}

json ThresholdOf(const std::map<std::string, std::string>& metadata) {
  auto threshold = metadata.find(kOperatingThresholdKey);
  if (threshold == metadata.end()) return nullptr;
  json result = {{"threshold", ValueOf(threshold->second)}};
  const std::pair<const char*, const char*> others[] = {{kOperatingThresholdMethodKey, "method"},
                                                        {"operating_sensitivity", "sensitivity"},
                                                        {"operating_specificity", "specificity"}};
  for (const auto& [key, name] : others) {
    auto found = metadata.find(key);
    if (found != metadata.end()) result[name] = ValueOf(found->second);
  }
  return result;
}

json ValidationOf(const v1::Metrics& metrics, const std::string& task) {
  json result = {{"examples", metrics.examples()}, {"loss", metrics.loss()}};
  if (task == ModelTaskName(ModelTask::kSegmentation)) {
    result["dice"] = metrics.dice();
    result["iou"] = metrics.iou();
    result["mean_image_dice"] = metrics.mean_image_dice();
  } else {
    result["auc"] = metrics.auc();
    result["accuracy"] = metrics.accuracy();
    result["sensitivity"] = metrics.sensitivity();
    result["specificity"] = metrics.specificity();
    result["f1"] = metrics.f1();
  }
  return result;
}

json CreatedOf(double unix_seconds) {
  if (unix_seconds <= 0) return nullptr;
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(std::llround(unix_seconds)),
                          absl::UTCTimeZone());
}

// Integer metadata entry `key`, or `fallback`.
int64_t IntOf(const std::map<std::string, std::string>& metadata, const std::string& key,
              int64_t fallback) {
  auto found = metadata.find(key);
  int64_t value = 0;
  return found != metadata.end() && absl::SimpleAtoi(found->second, &value) ? value : fallback;
}

// A card of a file written before cards: what its metadata says.
json CardFromOlderMetadata(const std::map<std::string, std::string>& metadata) {
  ModelFileInfo info;
  info.arch = metadata.at("arch");
  info.num_classes = IntOf(metadata, "num_classes", 2);
  info.image_size = IntOf(metadata, "image_size", IntOf(metadata, "height", 28));
  info.channels = IntOf(metadata, "channels", 1);
  info.run_id = IntOf(metadata, "run", 0);
  info.round = static_cast<int32_t>(IntOf(metadata, "round", 0));
  info.unet_base_width = IntOf(metadata, "unet_base_width", 0);
  info.unet_depth = IntOf(metadata, "unet_depth", 0);
  auto task = metadata.find("task");
  info.segmentation =
      task != metadata.end() && task->second == ModelTaskName(ModelTask::kSegmentation);
  info.metadata = metadata;
  json card = ModelCardOf(info);
  card["card_version"] = 0;
  auto version = metadata.find("fedmi_version");
  card["fedmi_version"] = version != metadata.end() ? json(version->second) : json(nullptr);
  if (info.run_id == 0) {
    card["run"] = nullptr;
  } else {
    // The file names its run and round only.
    for (const char* unknown : {"spec_sha256", "strategy", "sites", "secure_aggregation"}) {
      card["run"][unknown] = nullptr;
    }
  }
  return card;
}

// A card copied from another file, or edited, must not describe another
// model than the one the file holds: its metadata's arch, classes and input.
absl::Status CheckCardFitsTheModel(const json& card,
                                   const std::map<std::string, std::string>& metadata,
                                   const std::string& path) {
  const json input = card.value("input", json::object());
  const std::pair<const char*, json> claims[] = {
      {"arch", card.value("architecture", json())},
      {"num_classes", card.value("num_classes", json())},
      {"channels", input.is_object() ? input.value("channels", json()) : json()},
      {"image_size", input.is_object() ? input.value("height", json()) : json()}};
  for (const auto& [key, claim] : claims) {
    auto actual = metadata.find(key);
    if (actual == metadata.end()) continue;
    const std::string said = claim.is_string() ? claim.get<std::string>() : claim.dump();
    if (said != actual->second) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": its model card says ", key, " ", said,
                                                     " but the model's is ", actual->second,
                                                     " (a card from another file?)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

json ModelCardOf(const ModelFileInfo& info) {
  const std::string task = TaskOf(info);
  json card = {{"format", kModelCardFormat},
               {"card_version", kModelCardVersion},
               {"fedmi_version", GetBuildInfo().version},
               {"created", CreatedOf(info.created_unix)},
               {"architecture", info.arch},
               {"task", task},
               {"input", InputOf(info.image_size, info.image_size, info.channels)},
               {"normalization", Normalization()},
               {"num_classes", info.num_classes},
               {"class_names", info.class_names},
               {"operating_threshold", ThresholdOf(info.metadata)},
               {"run", nullptr},
               {"differential_privacy", PrivacyOf(info.metadata)},
               {"validation", nullptr}};
  if (info.arch == kUNetModel) {
    card["unet"] = {
        {"base_width", info.unet_base_width != 0 ? info.unet_base_width : kUNetDefaultBaseWidth},
        {"depth", info.unet_depth != 0 ? info.unet_depth : kUNetDefaultDepth}};
  }
  if (info.run_id != 0) {
    card["run"] = {{"id", info.run_id},
                   {"round", info.round},
                   {"spec_sha256", info.spec_sha256},
                   {"strategy", info.strategy},
                   {"sites", info.sites},
                   {"secure_aggregation", info.secure_aggregation}};
  }
  if (info.validation.has_value()) card["validation"] = ValidationOf(*info.validation, task);
  return card;
}

absl::StatusOr<json> ModelCardFromMetadata(const std::map<std::string, std::string>& metadata,
                                           const std::string& path) {
  auto text = metadata.find(kModelCardMetadataKey);
  if (text == metadata.end()) {
    if (metadata.count("arch") == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a fedmi model: it has no model card and no fedmi metadata"));
    }
    return CardFromOlderMetadata(metadata);
  }
  json card = json::parse(text->second, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (card.is_discarded() || !card.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": its model card is not a JSON object (corrupted?)"));
  }
  auto format = card.find("format");
  if (format == card.end() || *format != kModelCardFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": its model card does not say \"format\": \"", kModelCardFormat, "\""));
  }
  RETURN_IF_ERROR(CheckCardFitsTheModel(card, metadata, path));
  return card;
}

namespace {

// A JSON value on one line: strings bare, numbers as %g, null as "-".
std::string Plain(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return absl::StrFormat("%.6g", value.get<double>());
  if (value.is_array()) {
    std::vector<std::string> items;
    for (const json& item : value) items.push_back(Plain(item));
    return absl::StrJoin(items, ", ");
  }
  return value.dump();
}

// "key value, key value" of `object`'s entries named in `keys`, in that order.
std::string Entries(const json& object, std::initializer_list<const char*> keys) {
  if (!object.is_object()) return Plain(object);
  std::vector<std::string> parts;
  for (const char* key : keys) {
    auto found = object.find(key);
    if (found != object.end()) parts.push_back(absl::StrCat(key, " ", Plain(*found)));
  }
  return absl::StrJoin(parts, ", ");
}

std::string Field(const json& card, const char* key) {
  auto found = card.find(key);
  return found == card.end() ? "-" : Plain(*found);
}

}  // namespace

std::string ModelCardText(const json& card) {
  std::string text;
  auto line = [&](const char* label, const std::string& value) {
    absl::StrAppend(&text, absl::StrFormat("%-22s %s\n", label, value));
  };
  line("architecture", Field(card, "architecture") + " (" + Field(card, "task") + ")");
  const json input = card.value("input", json::object());
  line("input", absl::StrCat(Plain(input.value("height", json())), " x ",
                             Plain(input.value("width", json())), " pixels, ",
                             Plain(input.value("channels", json())), " channel(s), values 0-255"));
  line("normalization",
       Plain(card.value("normalization", json::object()).value("formula", json())));
  const json names = card.value("class_names", json::array());
  line("classes",
       absl::StrCat(Field(card, "num_classes"), ": ",
                    names.empty() ? "not named (model export --class-names)" : Plain(names)));
  const json threshold = card.value("operating_threshold", json());
  line("operating threshold",
       threshold.is_object()
           ? absl::StrCat(Plain(threshold.value("threshold", json())), " (",
                          Plain(threshold.value("method", json())), "), ",
                          Entries(threshold, {"sensitivity", "specificity"}), " on validation")
           : "none");
  const json run = card.value("run", json());
  if (run.is_object()) {
    line("run", absl::StrCat(Plain(run.value("id", json())), ", round ",
                             Plain(run.value("round", json()))));
    line("run spec sha256", Plain(run.value("spec_sha256", json())));
    line("strategy", Plain(run.value("strategy", json())));
    line("sites", Plain(run.value("sites", json())));
    const json secure = run.value("secure_aggregation", json());
    line("secure aggregation", secure.is_boolean() ? (secure.get<bool>() ? "on" : "off") : "-");
  } else {
    line("run", "- (weights of no run)");
  }
  const json privacy = card.value("differential_privacy", json());
  line("differential privacy",
       privacy.is_object() ? absl::StrCat(Plain(privacy.value("mechanism", json())), "; epsilon ",
                                          Plain(privacy.value("epsilon", json())), ", delta ",
                                          Plain(privacy.value("delta", json())))
                           : "none");
  line("validation", Entries(card.value("validation", json()),
                             {"examples", "auc", "accuracy", "sensitivity", "specificity", "f1",
                              "loss", "dice", "iou", "mean_image_dice"}));
  line("fedmi version", Field(card, "fedmi_version"));
  line("created", Field(card, "created"));
  if (card.value("card_version", 0) == 0) {
    line("note", "written before model cards: only what its metadata says");
  }
  return text;
}

}  // namespace fedmi::cli
