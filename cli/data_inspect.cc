// `fedmi data inspect PATH`: what a site's data holds before it trains on
// it. Counts per class and split, the DICOM headers as histograms, the
// files it cannot use and why, class imbalance, and optionally a contact
// sheet of preprocessed images so an operator can see what the model will
// see (orientation, MONOCHROME1 handling, windowing). With --quality, the
// image checks of common/data/image_quality.h over every split together, so
// that a duplicate across train and test shows too.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_runner.h"
#include "cli/out_of_distribution.h"
#include "common/base/status.h"
#include "common/data/dicom_data.h"
#include "common/data/image_data.h"
#include "common/data/image_quality.h"
#include "common/data/unlabelled_data.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fedmi::cli {
namespace {

constexpr int kPreviewPerClass = 8;
constexpr const char* kSplits[] = {"train", "val", "test"};

struct InspectOptions {
  std::string path;
  int64_t height = 28;
  int64_t width = 28;
  int64_t channels = 1;
  bool first_frame_only = false;
  std::string preview;
  bool quality = false;
  std::string quality_sheet;  // implies quality
  QualityThresholds quality_thresholds;
  std::string ood_model;  // implies quality
  double ood_quantile = 0.99;
};

using Histogram = std::map<std::string, int64_t>;

struct Inspection {
  DataLoadReport report;
  std::vector<std::string> class_names;  // Index order; "0", "1"... when unnamed.
  std::map<std::string, std::vector<int64_t>> class_counts;  // split -> per class
  std::map<std::string, Histogram> headers;                  // attribute -> histogram
  std::vector<std::string> skipped;                          // "<path>: <reason>"
  std::vector<std::vector<std::vector<uint8_t>>> previews;   // class -> images
  // --quality: every image, every split, and what each row is called.
  ImageSet checked;
  std::vector<std::string> checked_names;  // "train row 12" or the DICOM file
  std::vector<bool> checked_training;      // a labelled training image
  QualityReport quality;
  std::optional<OutOfDistributionCheck> ood;
  int64_t unlabelled = 0;  // images without a label (common/data/unlabelled_data.h)
  std::vector<std::string> quality_sheet_rows;  // the flag of each row of --quality-sheet
};

void KeepForQualityCheck(Inspection& inspection, const InspectOptions& options,
                         const uint8_t* pixels, std::string name, int64_t label, bool training) {
  if (!options.quality) return;
  ImageSet& checked = inspection.checked;
  checked.height = options.height;
  checked.width = options.width;
  checked.channels = options.channels;
  checked.pixels.insert(checked.pixels.end(), pixels, pixels + checked.ImageBytes());
  checked.labels.push_back(label);
  inspection.checked_names.push_back(std::move(name));
  inspection.checked_training.push_back(training && label != kNoLabel);
}

void Count(Inspection& inspection, const std::string& split, int64_t label) {
  std::vector<int64_t>& counts = inspection.class_counts[split];
  if (static_cast<int64_t>(counts.size()) <= label) counts.resize(label + 1, 0);
  ++counts[label];
}

void KeepPreview(Inspection& inspection, int64_t label, const uint8_t* pixels, int64_t bytes) {
  if (static_cast<int64_t>(inspection.previews.size()) <= label) {
    inspection.previews.resize(label + 1);
  }
  auto& kept = inspection.previews[label];
  if (static_cast<int>(kept.size()) < kPreviewPerClass) kept.emplace_back(pixels, pixels + bytes);
}

absl::StatusOr<Inspection> InspectDicom(const InspectOptions& options) {
  Inspection inspection;
  DicomFolderOptions load;
  load.read.height = options.height;
  load.read.width = options.width;
  load.read.channels = options.channels;
  load.read.first_frame_only = options.first_frame_only;
  load.max_bad_fraction = 1.0;  // Inspecting reports bad files; it never refuses them.
  auto visit = [&](const DicomFileVisit& file) {
    if (!file.status.ok()) {
      inspection.skipped.push_back(std::string(file.status.message()));
      return;
    }
    const DicomFacts& facts = file.image->facts;
    ++inspection.headers["modality"][facts.modality.empty() ? "(none)" : facts.modality];
    ++inspection.headers["photometric_interpretation"][facts.photometric_interpretation];
    ++inspection.headers["bits_stored"]
                        [absl::StrCat(facts.bits_stored, facts.is_signed ? " signed" : "")];
    ++inspection.headers["size"][absl::StrCat(facts.rows, "x", facts.columns)];
    ++inspection.headers["transfer_syntax"][facts.transfer_syntax];
    ++inspection.headers["voi"][facts.voi.empty() ? "(colour)" : facts.voi];
    if (file.label == kNoLabel) {
      ++inspection.unlabelled;
    } else {
      Count(inspection, file.split, file.label);
      KeepPreview(inspection, file.label, file.image->pixels.data(),
                  static_cast<int64_t>(file.image->pixels.size()));
    }
    KeepForQualityCheck(inspection, options, file.image->pixels.data(), file.path, file.label,
                        file.split == "train");
  };
  absl::StatusOr<DicomFolderData> data = LoadDicomFolder(options.path, load, visit);
  if (!data.ok()) return data.status();
  inspection.report = std::move(data->report);
  inspection.class_names = inspection.report.class_names;
  return inspection;
}

absl::StatusOr<Inspection> InspectImages(const InspectOptions& options) {
  Inspection inspection;
  SiteDataOptions load;
  load.height = options.height;
  load.width = options.width;
  load.channels = options.channels;
  for (const char* split : kSplits) {
    DataLoadReport report;
    absl::StatusOr<ImageSet> images = LoadDataSplit(options.path, split, load, &report);
    if (absl::IsNotFound(images.status()) && std::string(split) != "train") continue;
    if (!images.ok()) return images.status();
    inspection.report.source = report.source;
    // An npz is one file whichever split is read; folders count images.
    const bool npz = report.source == "npz";
    inspection.report.files_seen = npz ? 1 : inspection.report.files_seen + report.files_seen;
    inspection.report.files_loaded = npz ? 1 : inspection.report.files_loaded + report.files_loaded;
    for (const auto& [kind, count] : report.conversions)
      inspection.report.conversions[kind] += count;
    if (inspection.class_names.empty()) inspection.class_names = report.class_names;
    for (int64_t row = 0; row < images->size(); ++row) {
      Count(inspection, split, images->labels[row]);
      KeepPreview(inspection, images->labels[row],
                  images->pixels.data() + row * images->ImageBytes(), images->ImageBytes());
      KeepForQualityCheck(inspection, options, images->pixels.data() + row * images->ImageBytes(),
                          absl::StrCat(split, " row ", row), images->labels[row],
                          std::string(split) == "train");
    }
  }
  ASSIGN_OR_RETURN(UnlabelledPool pool, LoadUnlabelledPool(options.path, load));
  inspection.unlabelled = pool.images.size();
  for (int64_t row = 0; row < pool.images.size(); ++row) {
    KeepForQualityCheck(inspection, options,
                        pool.images.pixels.data() + row * pool.images.ImageBytes(),
                        absl::StrCat("unlabelled ", pool.ids[row]), kNoLabel, false);
  }
  return inspection;
}

std::string ClassName(const Inspection& inspection, size_t index) {
  return index < inspection.class_names.size() ? inspection.class_names[index]
                                               : absl::StrCat(index);
}

// Largest over smallest class count of a split (classes seen anywhere);
// infinity when some class has no row in it.
double Imbalance(const std::vector<int64_t>& counts, size_t classes) {
  if (classes < 2) return 1.0;
  int64_t most = 0, least = std::numeric_limits<int64_t>::max();
  for (size_t c = 0; c < classes; ++c) {
    const int64_t n = c < counts.size() ? counts[c] : 0;
    most = std::max(most, n);
    least = std::min(least, n);
  }
  return least == 0 ? std::numeric_limits<double>::infinity()
                    : static_cast<double>(most) / static_cast<double>(least);
}

size_t ClassCount(const Inspection& inspection) {
  size_t classes = inspection.class_names.size();
  for (const auto& [split, counts] : inspection.class_counts) {
    classes = std::max(classes, counts.size());
  }
  return classes;
}

using SheetRows = std::vector<std::vector<std::vector<uint8_t>>>;  // row -> images

// A PNG contact sheet of `rows`, up to kPreviewPerClass tiles each, every
// tile scaled up to about 128 pixels by pixel repetition, 4-pixel grey
// gutters.
absl::Status WriteSheet(const SheetRows& images, const InspectOptions& options,
                        const std::string& path) {
  const int64_t scale = std::max<int64_t>(1, 128 / std::max(options.height, options.width));
  const int64_t gutter = 4, c = options.channels;
  const int64_t tile_h = options.height * scale, tile_w = options.width * scale;
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(images.size()));
  const int64_t sheet_w = kPreviewPerClass * (tile_w + gutter) + gutter;
  const int64_t sheet_h = rows * (tile_h + gutter) + gutter;
  std::vector<uint8_t> sheet(sheet_w * sheet_h * c, 96);
  for (size_t row = 0; row < images.size(); ++row) {
    for (size_t col = 0; col < images[row].size() && col < kPreviewPerClass; ++col) {
      const std::vector<uint8_t>& image = images[row][col];
      const int64_t top = gutter + row * (tile_h + gutter), left = gutter + col * (tile_w + gutter);
      for (int64_t y = 0; y < tile_h; ++y) {
        for (int64_t x = 0; x < tile_w; ++x) {
          for (int64_t ch = 0; ch < c; ++ch) {
            sheet[((top + y) * sheet_w + left + x) * c + ch] =
                image[((y / scale) * options.width + x / scale) * c + ch];
          }
        }
      }
    }
  }
  if (stbi_write_png(path.c_str(), static_cast<int>(sheet_w), static_cast<int>(sheet_h),
                     static_cast<int>(c), sheet.data(), static_cast<int>(sheet_w * c)) == 0) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

// The flagged images, one row per flag present (QualityFlag order): the
// first kPreviewPerClass of each, near-duplicates as pairs (the earlier
// image, then its repeat). `row_flags` receives each row's flag name.
SheetRows QualitySheetRows(const Inspection& inspection, std::vector<std::string>* row_flags) {
  std::map<QualityFlag, std::vector<std::vector<uint8_t>>> by_flag;
  const int64_t bytes = inspection.checked.ImageBytes();
  auto image = [&](int64_t row) {
    const uint8_t* pixels = inspection.checked.pixels.data() + row * bytes;
    return std::vector<uint8_t>(pixels, pixels + bytes);
  };
  for (const QualityFinding& finding : inspection.quality.findings) {
    auto& tiles = by_flag[finding.flag];
    if (tiles.size() >= static_cast<size_t>(kPreviewPerClass)) continue;
    if (finding.flag == QualityFlag::kNearDuplicate) tiles.push_back(image(finding.duplicate_of));
    tiles.push_back(image(finding.index));
  }
  SheetRows rows;
  for (auto& [flag, tiles] : by_flag) {
    row_flags->push_back(QualityFlagName(flag));
    rows.push_back(std::move(tiles));
  }
  return rows;
}

// Findings per flag name.
std::map<std::string, int64_t> FlagCounts(const QualityReport& report) {
  std::map<std::string, int64_t> counts;
  for (const QualityFinding& finding : report.findings) ++counts[QualityFlagName(finding.flag)];
  return counts;
}

void PrintText(const Inspection& inspection, const InspectOptions& options) {
  const size_t classes = ClassCount(inspection);
  std::cout << options.path << ": " << FormatLoadReport(inspection.report);
  std::cout << absl::StrFormat("%-8s  %7s  %-30s  %s\n", "SPLIT", "IMAGES", "PER CLASS",
                               "MAJORITY/MINORITY");
  for (const char* split : kSplits) {
    auto found = inspection.class_counts.find(split);
    if (found == inspection.class_counts.end()) continue;
    std::vector<std::string> parts;
    int64_t total = 0;
    for (size_t c = 0; c < classes; ++c) {
      const int64_t n = c < found->second.size() ? found->second[c] : 0;
      total += n;
      parts.push_back(absl::StrCat(ClassName(inspection, c), " ", n));
    }
    const double ratio = Imbalance(found->second, classes);
    std::cout << absl::StrFormat(
        "%-8s  %7d  %-30s  %s\n", split, total, absl::StrJoin(parts, ", "),
        std::isinf(ratio) ? "a class is missing" : absl::StrFormat("%.2f", ratio));
  }
  if (inspection.unlabelled > 0) {
    std::cout << absl::StrFormat(
        "%-8s  %7d  not trained on; `fedmi al rank` picks which to label, fedmi-client "
        "--semi-supervised learns from them\n",
        "unlabel.", inspection.unlabelled);
  }
  for (const auto& [attribute, histogram] : inspection.headers) {
    std::vector<std::string> parts;
    for (const auto& [value, count] : histogram) parts.push_back(absl::StrCat(value, ": ", count));
    std::cout << attribute << ": " << absl::StrJoin(parts, ", ") << "\n";
  }
  if (!inspection.skipped.empty()) {
    std::cout << "unusable files:\n";
    for (const std::string& line : inspection.skipped) std::cout << "  " << line << "\n";
  }
  if (!options.quality) return;
  std::vector<std::string> parts;
  for (const auto& [flag, count] : FlagCounts(inspection.quality)) {
    parts.push_back(absl::StrCat(flag, " ", count));
  }
  std::cout << "quality: " << inspection.checked.size() << " images checked; "
            << (parts.empty() ? "nothing flagged" : absl::StrJoin(parts, ", ")) << "\n";
  for (const QualityFinding& finding : inspection.quality.findings) {
    std::cout << "  " << inspection.checked_names[finding.index] << ": "
              << QualityFlagName(finding.flag);
    switch (finding.statistic) {
      case QualityStatistic::kStd:
        std::cout << absl::StrFormat(" (grey-level std %.2f)", finding.value);
        break;
      case QualityStatistic::kDarkFraction:
        std::cout << absl::StrFormat(" (%.0f%% of pixels black)", finding.value * 100);
        break;
      case QualityStatistic::kMean:
        std::cout << absl::StrFormat(" (mean grey level %.1f)", finding.value);
        break;
      case QualityStatistic::kThumbnailStd:
        std::cout << absl::StrFormat(" (noise over a flat frame: std %.2f at 16x16)",
                                     finding.value);
        break;
      case QualityStatistic::kBrightFraction:
        std::cout << absl::StrFormat(" (%.0f%% of pixels white)", finding.value * 100);
        break;
      case QualityStatistic::kCorrelation:
        std::cout << absl::StrFormat(" (correlation %.2f with the site's typical image)",
                                     finding.value);
        break;
      case QualityStatistic::kThumbnailDistance:
        std::cout << absl::StrFormat(" of %s (mean difference %.2f grey levels)",
                                     inspection.checked_names[finding.duplicate_of], finding.value);
        break;
      case QualityStatistic::kMahalanobis:
        std::cout << absl::StrFormat(
            " (Mahalanobis distance %.1f to the training images, over %.1f)", finding.value,
            inspection.ood->threshold);
        break;
    }
    std::cout << "\n";
  }
}

nlohmann::json QualityJson(const Inspection& inspection, const InspectOptions& options) {
  const QualityThresholds& thresholds = options.quality_thresholds;
  nlohmann::json findings = nlohmann::json::array();
  for (const QualityFinding& finding : inspection.quality.findings) {
    nlohmann::json entry = {{"image", inspection.checked_names[finding.index]},
                            {"flag", QualityFlagName(finding.flag)},
                            {"statistic", QualityStatisticName(finding.statistic)},
                            {"value", JsonNumber(finding.value)}};
    if (finding.duplicate_of >= 0) {
      entry["duplicate_of"] = inspection.checked_names[finding.duplicate_of];
    }
    findings.push_back(std::move(entry));
  }
  nlohmann::json json = {{"images_checked", inspection.checked.size()},
                         {"counts", FlagCounts(inspection.quality)},
                         {"thresholds",
                          {{"blank_max_std", thresholds.blank_max_std},
                           {"blank_max_thumbnail_std", thresholds.blank_max_thumbnail_std},
                           {"clipped_min_fraction", thresholds.clipped_min_fraction},
                           {"dark_level", thresholds.dark_level},
                           {"bright_level", thresholds.bright_level},
                           {"dim_max_mean", thresholds.dim_max_mean},
                           {"inverted_max_correlation", thresholds.inverted_max_correlation},
                           {"duplicate_max_difference", thresholds.duplicate_max_difference}}},
                         {"findings", findings}};
  if (!options.quality_sheet.empty()) {
    json["sheet"] = {{"path", options.quality_sheet}, {"rows", inspection.quality_sheet_rows}};
  }
  if (inspection.ood) {
    json["out_of_distribution"] = {{"model", inspection.ood->model},
                                   {"quantile", inspection.ood->quantile},
                                   {"fitted_on", inspection.ood->fitted_on},
                                   {"threshold", inspection.ood->threshold}};
  }
  return json;
}

nlohmann::json ToJson(const Inspection& inspection, const InspectOptions& options) {
  const size_t classes = ClassCount(inspection);
  std::vector<std::string> names;
  for (size_t c = 0; c < classes; ++c) names.push_back(ClassName(inspection, c));
  nlohmann::json splits = nlohmann::json::object();
  for (const auto& [split, counts] : inspection.class_counts) {
    std::vector<int64_t> padded(classes, 0);
    std::copy(counts.begin(), counts.end(), padded.begin());
    int64_t total = 0;
    for (int64_t n : padded) total += n;
    splits[split] = {{"images", total},
                     {"class_counts", padded},
                     {"majority_minority_ratio", JsonNumber(Imbalance(counts, classes))}};
  }
  const DataLoadReport& report = inspection.report;
  nlohmann::json json = {{"path", options.path},
                         {"source", report.source},
                         {"geometry", {options.height, options.width, options.channels}},
                         {"files_seen", report.files_seen},
                         {"files_loaded", report.files_loaded},
                         {"files_skipped", report.files_skipped},
                         {"files_unlabelled", report.files_unlabelled},
                         {"unlabelled_images", inspection.unlabelled},
                         {"skipped_by_reason", report.skipped_by_reason},
                         {"unusable_files", inspection.skipped},
                         {"conversions", report.conversions},
                         {"classes", names},
                         {"splits", splits}};
  for (const auto& [attribute, histogram] : inspection.headers) json[attribute] = histogram;
  if (options.quality) json["quality"] = QualityJson(inspection, options);
  if (!options.preview.empty()) {
    std::vector<std::string> rows;
    for (size_t c = 0; c < inspection.previews.size(); ++c)
      rows.push_back(ClassName(inspection, c));
    json["preview"] = {{"path", options.preview}, {"rows", rows}};
  }
  return json;
}

int Inspect(const GlobalOptions& global, const InspectOptions& options, ModelRunner* runner) {
  if (options.height < 1 || options.width < 1 || options.height > 4096 || options.width > 4096) {
    return ReportUsageError(absl::StrCat("--height and --width must be 1..4096, got ",
                                         options.height, "x", options.width));
  }
  absl::StatusOr<Inspection> inspection =
      IsDicomFolder(options.path) ? InspectDicom(options) : InspectImages(options);
  if (!inspection.ok()) return ReportError(inspection.status());
  if (options.quality) {
    inspection->quality = CheckImageQuality(inspection->checked, options.quality_thresholds);
  }
  if (!options.ood_model.empty()) {
    if (runner == nullptr)
      return ReportError(TrainingUnavailableError("fedmi data inspect --ood-model"));
    absl::StatusOr<OutOfDistributionCheck> ood = FlagOutOfDistribution(
        *runner, options.ood_model, inspection->checked, inspection->checked_training,
        options.ood_quantile, inspection->quality);
    if (!ood.ok()) return ReportError(ood.status());
    inspection->ood = *ood;
  }
  if (!options.preview.empty()) {
    if (absl::Status written = WriteSheet(inspection->previews, options, options.preview);
        !written.ok()) {
      return ReportError(written);
    }
  }
  if (!options.quality_sheet.empty()) {
    if (absl::Status written =
            WriteSheet(QualitySheetRows(*inspection, &inspection->quality_sheet_rows), options,
                       options.quality_sheet);
        !written.ok()) {
      return ReportError(written);
    }
  }
  if (global.json) {
    PrintJsonLine(ToJson(*inspection, options));
    return kExitOk;
  }
  PrintText(*inspection, options);
  if (!options.preview.empty()) {
    std::cout << "preview " << options.preview << ", one row per class, top to bottom:";
    for (size_t c = 0; c < inspection->previews.size(); ++c) {
      std::cout << (c == 0 ? " " : ", ") << ClassName(*inspection, c);
    }
    std::cout << "\n";
  }
  if (!options.quality_sheet.empty()) {
    std::cout << "quality sheet " << options.quality_sheet << ", one row per flag, top to bottom: "
              << (inspection->quality_sheet_rows.empty()
                      ? "(none: nothing flagged)"
                      : absl::StrJoin(inspection->quality_sheet_rows, ", "))
              << (absl::c_linear_search(inspection->quality_sheet_rows, "near-duplicate")
                      ? " (near-duplicates in pairs: the earlier image, then its repeat)"
                      : "")
              << "\n";
  }
  std::cout << std::flush;
  return kExitOk;
}

}  // namespace

void AddDataInspectCommand(CLI::App* data, GlobalOptions& global, CommandResult& result,
                           std::shared_ptr<ModelRunner> runner) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* inspect = data->add_subcommand(
      "inspect",
      "Summarise a data source (.npz, image folder or DICOM folder) before training on it: "
      "images per class and split, class imbalance, DICOM modality, photometric "
      "interpretation, bits, sizes and transfer syntaxes, and the files that cannot be used "
      "and why");
  inspect
      ->add_option("path", options->path,
                   "an .npz, an image folder or a DICOM folder (layouts: docs/data.md)")
      ->required();
  AddCheckedOption(inspect, "--height", options->height,
                   "image height the model will see (images are fitted, aspect kept)",
                   CLI::PositiveNumber);
  AddCheckedOption(inspect, "--width", options->width, "image width the model will see",
                   CLI::PositiveNumber);
  AddCheckedOption(inspect, "--channels", options->channels, "1 (grey) or 3 (RGB)",
                   CLI::IsMember({1, 3}));
  inspect->add_flag("--first-frame", options->first_frame_only,
                    "use the first frame of multi-frame DICOM files instead of skipping them");
  inspect->add_option("--preview", options->preview,
                      "write a PNG contact sheet: up to 8 preprocessed images per class, one row "
                      "per class, scaled up");
  inspect->add_flag("--quality", options->quality,
                    "also check every image: blank or near-constant, under- or over-exposed, "
                    "inverted against the site's typical image, near-duplicates (across splits "
                    "too); thresholds in docs/data.md");
  inspect->add_option("--quality-sheet", options->quality_sheet,
                      "with --quality implied: write a PNG contact sheet of the flagged images, "
                      "one row per flag, up to 8 each (near-duplicates as pairs)");
  inspect->add_option("--ood-model", options->ood_model,
                      "with --quality implied: also flag images far from the labelled training "
                      "images in this model's embedding (Mahalanobis distance over the "
                      "--ood-quantile of the training images' own; .pt or .safetensors at "
                      "--height x --width)");
  AddCheckedOption(inspect, "--ood-quantile", options->ood_quantile,
                   "--ood-model: the share of training images whose distance the threshold "
                   "lies above",
                   CLI::Range(0.5, 1.0));
  AddJsonFlag(inspect, global);
  inspect->callback([&global, &result, options, runner] {
    if (!options->quality_sheet.empty() || !options->ood_model.empty()) options->quality = true;
    RunCommand(result, [&] { return Inspect(global, *options, runner.get()); });
  });
}

}  // namespace fedmi::cli
