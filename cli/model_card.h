// The model card every fedmi model file carries (docs/models.md): what a
// hospital deploying the model or an ethics board reviewing it needs to
// know, in the file itself. A JSON object:
//
//   format, card_version      "fedmi-model-card", 1
//   fedmi_version, created    who wrote it; when the round finished (after
//                             its evaluation once recorded; ISO 8601 UTC),
//                             null if unknown
//   architecture, task        "cnn", "classification" | "segmentation"
//   input                     height, width, channels, pixel_range [0, 255],
//                             layout
//   normalization             formula, scale, mean, std (what `preprocess`
//                             does; common/runspec/model_file_format.h)
//   num_classes, class_names  names in index order; [] when not given
//   operating_threshold       threshold, method, sensitivity, specificity
//                             on the federation's validation data; or null
//   run                       id, round, spec_sha256, strategy, sites (that
//                             contributed an update up to the round),
//                             secure_aggregation; null for weights of no run
//   differential_privacy      the dp_* entries (mechanism, epsilon, delta,
//                             ...), numbers as numbers; null without DP
//   validation                the round's validation metrics as stored:
//                             examples summed, the rest the example-weighted
//                             mean of the sites' own; null for round 0 or
//                             a round not yet evaluated
//
// Nothing in it names a site or describes a patient or an image: counts,
// hashes and aggregates only. Pure functions; thread-safe.
#ifndef FEDMI_CLI_MODEL_CARD_H_
#define FEDMI_CLI_MODEL_CARD_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "cli/model_export.h"

namespace fedmi::cli {

// The card of a file written with `info`.
nlohmann::json ModelCardOf(const ModelFileInfo& info);

// The card stored in a model file's metadata (its kModelCardMetadataKey
// entry), parsed and checked to be a fedmi card; `path` names the file in
// errors. A file written before cards existed has fedmi metadata ("arch")
// but no card: the card is then rebuilt from what the metadata holds, with
// "card_version" 0 and null where it says nothing. InvalidArgument, naming
// the file, for a card that is not a fedmi card's JSON, or metadata with
// neither a card nor "arch" ("not a fedmi model").
absl::StatusOr<nlohmann::json> ModelCardFromMetadata(
    const std::map<std::string, std::string>& metadata, const std::string& path);

// The card for a person: one fact a line, in the card's order.
std::string ModelCardText(const nlohmann::json& card);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_MODEL_CARD_H_
