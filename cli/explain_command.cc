// `fedmi explain`: Grad-CAM or Grad-CAM++ heat-maps of a model file on some
// images of a split, written as one overlay PNG per image, a contact sheet
// of them all and a CSV of each map's peak (none for a map without one).
// The maps come from the ModelRunner (client/ml/explain.h behind it);
// drawing and files need no model code. See docs/explain.md.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_runner.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "common/plot/heatmap_overlay.h"

namespace fedmi::cli {
namespace {

constexpr int kMaxSheetColumns = 8;

struct ExplainFlags {
  ExplainRequest request;
  std::vector<int64_t> indices;
  int64_t target_class = -1;  // -1: the default class
  std::string out;
  int threads = 0;
};

// The CSV's "map" column: whether the map has a peak, and if not why.
const char* MapState(const ExplainedImage& image) {
  if (!image.finite) return "non_finite";
  return image.peak.has_value() ? "peak" : "empty";
}

// At most 18 characters a line, what a 224-pixel tile holds.
std::vector<std::string> Caption(const ExplainedImage& image) {
  std::vector<std::string> lines = {
      absl::StrFormat("IMG %d LABEL %d", image.index, image.label),
      absl::StrFormat("P(%d) %.3f", image.target_class, image.probability)};
  if (!image.finite) {
    lines.push_back("MAP NOT FINITE");
  } else if (!image.peak.has_value()) {
    lines.push_back("MAP 0: NO EVIDENCE");
  }
  return lines;
}

// Writes the overlays, the contact sheet and the CSV; returns the paths
// written, overlays first.
absl::StatusOr<std::vector<std::string>> WriteExplanations(const SplitExplanations& result,
                                                           const std::string& out) {
  Env& env = *Env::Default();
  RETURN_IF_ERROR(env.CreateDirs(out));
  std::vector<std::string> files;
  std::vector<Canvas> tiles;
  std::string csv = "index,label,prob,peak_row,peak_col,peak_value,map\n";
  const ImageSet& images = result.images;
  for (size_t i = 0; i < result.explained.size(); ++i) {
    const ExplainedImage& image = result.explained[i];
    absl::StatusOr<Canvas> tile = DrawHeatmapOverlay(
        images.pixels.data() + i * images.ImageBytes(), images.height, images.width,
        images.channels, image.heatmap,
        image.peak.has_value() ? std::optional(HeatmapPeak{image.peak->row, image.peak->col})
                               : std::nullopt,
        Caption(image));
    if (!tile.ok()) return tile.status();
    const std::string path = absl::StrFormat("%s/overlay_%04d.png", out, image.index);
    RETURN_IF_ERROR(tile->SavePng(path, env));
    files.push_back(path);
    tiles.push_back(*std::move(tile));
    absl::StrAppendFormat(&csv, "%d,%d,%.6f,", image.index, image.label, image.probability);
    if (image.peak.has_value()) {
      absl::StrAppendFormat(&csv, "%d,%d,%.6f,", image.peak->row, image.peak->col,
                            image.peak->value);
    } else {
      csv += ",,,";  // no peak to report; (0, 0) would look like one
    }
    absl::StrAppendFormat(&csv, "%s\n", MapState(image));
  }
  const int columns = std::min(
      kMaxSheetColumns, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(tiles.size())))));
  const std::string sheet = out + "/contact_sheet.png";
  RETURN_IF_ERROR(DrawContactSheet(tiles, columns).SavePng(sheet, env));
  files.push_back(sheet);
  const std::string csv_path = out + "/explanations.csv";
  RETURN_IF_ERROR(WriteFileAtomically(env, csv_path, csv));
  files.push_back(csv_path);
  return files;
}

int Explain(const GlobalOptions& global, ExplainFlags& flags, ModelRunner* runner) {
  if (runner == nullptr) return ReportError(TrainingUnavailableError("fedmi explain"));
  runner->SetThreads(flags.threads);
  ExplainRequest& request = flags.request;
  request.indices = flags.indices;
  if (flags.target_class >= 0) request.target_class = flags.target_class;
  request.progress = [](int64_t done, int64_t total) {
    std::cerr << "explained " << done << "/" << total << " images" << std::endl;
  };
  absl::StatusOr<SplitExplanations> result = runner->ExplainSplit(request);
  if (!result.ok()) return ReportError(result.status());
  absl::StatusOr<std::vector<std::string>> files = WriteExplanations(*result, flags.out);
  if (!files.ok()) return ReportError(files.status());
  const size_t count = result->explained.size();
  int64_t empty = 0, non_finite = 0;
  for (const ExplainedImage& image : result->explained) {
    non_finite += !image.finite;
    empty += image.finite && !image.peak.has_value();
  }
  if (global.json) {
    PrintJsonLine({{"count", count},
                   {"method", result->method},
                   {"layer", result->layer},
                   {"empty_maps", empty},
                   {"non_finite_maps", non_finite},
                   {"out", flags.out},
                   {"overlays", std::vector<std::string>(files->begin(), files->end() - 2)},
                   {"contact_sheet", (*files)[count]},
                   {"csv", (*files)[count + 1]}});
  } else {
    std::cout << absl::StrFormat(
        "%s at layer %s for %d images of %s (split %s)\n"
        "wrote %d overlays, %s and %s\n",
        result->method, result->layer, count, request.data_path, request.split, count,
        (*files)[count], (*files)[count + 1]);
    if (empty > 0) {
      std::cout << absl::StrFormat(
          "%d of %d maps are 0 everywhere: no evidence for the class at layer %s (no peak in the "
          "CSV; an earlier --layer may show some)\n",
          empty, count, result->layer);
    }
    if (non_finite > 0) {
      std::cout << absl::StrFormat(
          "%d of %d maps are not finite: the model gives NaN or infinity\n", non_finite, count);
    }
    std::cout << std::flush;
  }
  return kExitOk;
}

}  // namespace

void AddExplainCommand(CLI::App& app, GlobalOptions& global, CommandResult& result,
                       std::shared_ptr<ModelRunner> runner) {
  auto flags = std::make_shared<ExplainFlags>();
  ExplainRequest& request = flags->request;
  CLI::App* explain = app.add_subcommand(
      "explain",
      "Heat-maps of where a model's evidence for a class lies (Grad-CAM, Grad-CAM++) on images "
      "of a split: an overlay PNG per image, a contact sheet and a CSV of each map's peak");
  explain
      ->add_option("--model", request.model_path,
                   "model file: .pt (fedmi's or any TorchScript module) or .safetensors")
      ->required();
  explain
      ->add_option("--data", request.data_path,
                   "labelled data: a MedMNIST-style .npz, an image folder or a DICOM folder "
                   "(docs/data.md); read at the model's input size")
      ->required();
  explain->add_option("--split", request.split, "which split of the data to use")
      ->check(CLI::IsMember({"train", "val", "test"}))
      ->capture_default_str();
  CLI::Option* indices =
      explain->add_option("--indices", flags->indices, "rows of the split to explain, e.g. 1,5,9")
          ->delimiter(',')
          ->check(CLI::NonNegativeNumber);
  explain->add_option("--limit", request.limit, "explain the split's first N images")
      ->check(CLI::PositiveNumber)
      ->excludes(indices)
      ->capture_default_str();
  explain->add_option("--out", flags->out, "directory to write the PNGs and the CSV to")
      ->required();
  explain->add_option("--method", request.method, "gradcam or gradcam++")
      ->check(CLI::IsMember({"gradcam", "gradcam++"}))
      ->capture_default_str();
  explain->add_option("--layer", request.layer,
                      "layer to explain: one the model names (fedmi's models: cnn block1..block3, "
                      "resnet18 layer1..layer4; default the last whose map is at least 7x7, e.g. "
                      "block2 at 28x28) or, for other TorchScript modules (required), a submodule "
                      "path such as layer4 or features.7");
  explain
      ->add_option("--class", flags->target_class,
                   "class whose evidence to show; default 1 (pneumonia) for two-class models, "
                   "else each image's predicted class")
      ->check(CLI::NonNegativeNumber);
  explain
      ->add_option("--image-size", request.image_size,
                   "input size of a TorchScript module that does not store one (not fedmi's)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  explain
      ->add_option("--channels", request.channels,
                   "input channels of such a module: 1 (grey) or 3 (RGB)")
      ->check(CLI::IsMember({1, 3}))
      ->capture_default_str();
  explain
      ->add_option("--threads", flags->threads,
                   "LibTorch threads; 0 uses every CPU this process may use")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  AddJsonFlag(explain, global);
  explain->callback([&global, &result, flags, runner] {
    RunCommand(result, [&] { return Explain(global, *flags, runner.get()); });
  });
}

}  // namespace fedmi::cli
