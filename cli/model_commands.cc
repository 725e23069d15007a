// `fedmi model list|export|convert|evaluate|predict` (and `info`, in
// cli/model_info_command.cc). Model code is reached through the
// ModelRunner given to AddModelCommands; without one (a fedmi built without
// training) evaluate, predict, convert and `.pt`/`.ptl` export refuse, and `.safetensors`
// export still works. Calibration, the reliability diagram and the metrics
// at a model file's stored operating threshold are computed here, from the
// runner's predictions, with no model code.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "cli/model_export.h"
#include "cli/model_runner.h"
#include "common/base/env.h"
#include "common/data/metrics.h"
#include "common/evaluation/calibration.h"
#include "common/evaluation/operating_threshold.h"
#include "common/plot/mask_image.h"
#include "common/plot/reliability_diagram.h"
#include "common/runspec/model_names.h"

namespace fedmi::cli {
namespace {

struct ExportOptions {
  int64_t run_id = 0;
  int32_t round = -1;  // latest
  std::string out;
  std::string format;       // "" (from --out's extension), pt, safetensors, mobile
  std::string quantize;     // "" or int8
  std::string model_file;   // runs that trained a model file
  std::string class_names;  // comma-separated
};

struct ConvertOptions {
  std::string model;
  std::string out;
  std::string quantize;
};

struct DataOptions {
  std::string model;
  std::string data;
  std::string split = "test";
  double threshold = 0.5;
  int threads = 0;
  std::string out;
  std::string reliability_plot;  // evaluate: a PNG to write, if set
  std::string reference;         // evaluate: a model file to compare with, if set
  std::string out_masks;         // predict, segmentation: a directory for mask PNGs
};

int ExportModel(const GlobalOptions& global, const ExportOptions& options, ModelRunner* runner) {
  auto format = ResolveExportFormat(options.out, options.format, options.quantize);
  if (!format.ok()) return ReportUsageError(absl::StrCat("--out: ", format.status().message()));
  format->model_file = options.model_file;
  format->class_names = SplitClassNames(options.class_names);
  if (absl::Status status = CheckModelFileWritable(options.out, runner); !status.ok()) {
    return ReportError(status);
  }
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  std::string summary;
  absl::Status status = ExportModelToFile(**admin, options.run_id, options.round, options.out,
                                          *format, runner, &summary);
  if (!status.ok()) return ReportError(status);
  std::cout << summary << std::endl;
  return kExitOk;
}

int ConvertModel(const ConvertOptions& options, ModelRunner* runner) {
  if (!absl::EndsWith(options.out, ".ptl")) {
    return ReportUsageError(
        absl::StrCat("--out '", options.out, "' must end in .ptl: convert writes mobile files"));
  }
  auto format = ResolveExportFormat(options.out, "mobile", options.quantize);
  if (!format.ok()) return ReportUsageError(std::string(format.status().message()));
  if (runner == nullptr) return ReportError(TrainingUnavailableError("fedmi model convert"));
  if (absl::Status status =
          runner->ConvertToMobile(options.model, options.out, format->quantize_int8);
      !status.ok()) {
    return ReportError(status);
  }
  auto bytes = Env::Default()->FileSize(options.out);
  if (!bytes.ok()) return ReportError(bytes.status());
  std::cout << "wrote " << options.out << " (mobile"
            << (format->quantize_int8 ? ", int8 linear layers" : "") << "), " << *bytes << " bytes"
            << std::endl;
  return kExitOk;
}

std::string DescribeThreshold(const StoredThreshold& stored) {
  return stored.method.empty() ? absl::StrFormat("%g", stored.threshold)
                               : absl::StrFormat("%g (%s)", stored.threshold, stored.method);
}

std::string ThresholdMetricsText(const BinaryMetrics& m) {
  return absl::StrFormat("  accuracy     %s\n", FormatMetric(m.accuracy)) +
         absl::StrFormat("  sensitivity  %s\n", FormatMetric(m.sensitivity)) +
         absl::StrFormat("  specificity  %s\n", FormatMetric(m.specificity)) +
         absl::StrFormat("  f1           %s\n", FormatMetric(m.f1));
}

// What `model evaluate` reports, beyond the runner's evaluation.
struct EvaluationReport {
  ModelEvaluation evaluation;
  Calibration calibration;
  // At the model file's operating threshold, when it stores one.
  std::optional<StoredThresholdMetrics> at_stored;
  // --reference: that model's evaluation on the same split and threshold,
  // and the largest |P(class 1) - the reference's| over the images, which
  // measures what a mobile or int8 file costs.
  std::optional<ModelEvaluation> reference;
  double max_abs_prob_difference = 0;
};

absl::Status CompareWithReference(const DataOptions& options, ModelRunner& runner,
                                  EvaluationReport& report) {
  absl::StatusOr<ModelEvaluation> reference =
      runner.EvaluateOnSplit(options.reference, options.data, options.split, options.threshold);
  if (!reference.ok()) return reference.status();
  const SplitPredictions& ours = report.evaluation.predictions;
  if (reference->predictions.labels != ours.labels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--reference ", options.reference, " reads the data differently from ", options.model,
        " (another input size or channel count?), so their predictions cannot be compared"));
  }
  double max = 0;
  for (size_t i = 0; i < ours.prob_positive.size(); ++i) {
    max = std::max(max, std::abs(static_cast<double>(ours.prob_positive[i]) -
                                 reference->predictions.prob_positive[i]));
  }
  report.max_abs_prob_difference = max;
  report.reference = *std::move(reference);
  return absl::OkStatus();
}

nlohmann::json MetricsJson(const ModelEvaluation& evaluation) {
  const BinaryMetrics& m = evaluation.metrics;
  return {{"auc", JsonNumber(m.auc)},
          {"accuracy", JsonNumber(m.accuracy)},
          {"sensitivity", JsonNumber(m.sensitivity)},
          {"specificity", JsonNumber(m.specificity)},
          {"f1", JsonNumber(m.f1)},
          {"loss", JsonNumber(evaluation.loss)}};
}

void PrintEvaluationJson(const DataOptions& options, const EvaluationReport& report) {
  const BinaryMetrics& m = report.evaluation.metrics;
  nlohmann::json json = {{"auc", JsonNumber(m.auc)},
                         {"accuracy", JsonNumber(m.accuracy)},
                         {"sensitivity", JsonNumber(m.sensitivity)},
                         {"specificity", JsonNumber(m.specificity)},
                         {"f1", JsonNumber(m.f1)},
                         {"loss", JsonNumber(report.evaluation.loss)},
                         {"examples", m.examples},
                         {"threshold", options.threshold},
                         {"brier", JsonNumber(report.calibration.brier)},
                         {"ece", JsonNumber(report.calibration.ece)},
                         {"ece_bins", kCalibrationBins}};
  // null when the model file stores no operating threshold.
  json["operating_threshold"] = nullptr;
  if (report.at_stored.has_value()) {
    json["operating_threshold"] = StoredThresholdMetricsJson(*report.at_stored);
  }
  if (!options.reliability_plot.empty()) json["reliability_plot"] = options.reliability_plot;
  if (report.reference.has_value()) {
    nlohmann::json reference = MetricsJson(*report.reference);
    reference["model"] = options.reference;
    reference["max_abs_prob_difference"] = report.max_abs_prob_difference;
    json["reference"] = reference;
  }
  PrintJsonLine(json);
}

// A segmentation model's scores: pooled Dice and IoU (all pixels of the
// split as one image), the means of per-image Dice, IoU and HD95 (in
// pixels, over the images where both masks are non-empty or both empty).
void PrintSegmentationEvaluation(const GlobalOptions& global, const DataOptions& options,
                                 const ModelEvaluation& evaluation) {
  const SegmentationCounts& c = *evaluation.segmentation;
  if (global.json) {
    PrintJsonLine({{"task", "segmentation"},
                   {"examples", c.images},
                   {"loss", JsonNumber(evaluation.loss)},
                   {"dice", JsonNumber(c.PooledDice())},
                   {"iou", JsonNumber(c.PooledIou())},
                   {"mean_image_dice", JsonNumber(c.MeanDice())},
                   {"mean_image_iou", JsonNumber(c.MeanIou())},
                   {"hd95", JsonNumber(c.MeanHausdorff95())},
                   {"hd95_images", c.hausdorff95_images},
                   {"hd95_undefined", c.hausdorff_undefined}});
    return;
  }
  std::cout << absl::StrFormat("model %s on %s (split %s, segmentation)\n", options.model,
                               options.data, options.split)
            << absl::StrFormat("  examples         %d\n", c.images)
            << absl::StrFormat("  dice (pooled)    %s\n", FormatMetric(c.PooledDice()))
            << absl::StrFormat("  iou (pooled)     %s\n", FormatMetric(c.PooledIou()))
            << absl::StrFormat("  mean image dice  %s\n", FormatMetric(c.MeanDice()))
            << absl::StrFormat("  mean image iou   %s\n", FormatMetric(c.MeanIou()))
            << absl::StrFormat(
                   "  hd95             %s px (mean over %d images; %d with one mask "
                   "empty left out)\n",
                   FormatMetric(c.MeanHausdorff95()), c.hausdorff95_images, c.hausdorff_undefined)
            << absl::StrFormat("  loss             %s\n", FormatMetric(evaluation.loss))
            << std::flush;
}

void PrintEvaluationText(const DataOptions& options, const EvaluationReport& report) {
  const BinaryMetrics& m = report.evaluation.metrics;
  std::cout << absl::StrFormat("model %s on %s (split %s, threshold %g)\n", options.model,
                               options.data, options.split, options.threshold)
            << absl::StrFormat("  examples     %d\n", m.examples)
            << absl::StrFormat("  auc          %s\n", FormatMetric(m.auc))
            << ThresholdMetricsText(m)
            << absl::StrFormat("  loss         %s\n", FormatMetric(report.evaluation.loss))
            << absl::StrFormat("  brier        %s\n", FormatMetric(report.calibration.brier))
            << absl::StrFormat("  ece          %s (%d bins)\n",
                               FormatMetric(report.calibration.ece), kCalibrationBins);
  if (report.at_stored.has_value()) {
    std::cout << "at the model's operating threshold "
              << DescribeThreshold(report.at_stored->stored) << ":\n"
              << ThresholdMetricsText(report.at_stored->metrics);
  } else {
    std::cout << "the model file stores no operating threshold\n";
  }
  if (!options.reliability_plot.empty()) {
    std::cout << "wrote reliability diagram to " << options.reliability_plot << "\n";
  }
  if (report.reference.has_value()) {
    const ModelEvaluation& r = *report.reference;
    std::cout << absl::StrFormat("reference %s (this model - reference):\n", options.reference);
    const std::pair<const char*, std::pair<double, double>> rows[] = {
        {"auc", {m.auc, r.metrics.auc}},
        {"accuracy", {m.accuracy, r.metrics.accuracy}},
        {"sensitivity", {m.sensitivity, r.metrics.sensitivity}},
        {"specificity", {m.specificity, r.metrics.specificity}},
        {"f1", {m.f1, r.metrics.f1}},
        {"loss", {report.evaluation.loss, r.loss}}};
    for (const auto& [name, values] : rows) {
      std::cout << absl::StrFormat("  %-12s %s (%+.6f)\n", name, FormatMetric(values.second),
                                   values.first - values.second);
    }
    std::cout << absl::StrFormat("  max |P(class 1) difference|  %.3g\n",
                                 report.max_abs_prob_difference);
  }
  std::cout << std::flush;
}

int EvaluateModelFile(const GlobalOptions& global, const DataOptions& options,
                      ModelRunner* runner) {
  if (runner == nullptr) return ReportError(TrainingUnavailableError("fedmi model evaluate"));
  runner->SetThreads(options.threads);
  auto evaluation =
      runner->EvaluateOnSplit(options.model, options.data, options.split, options.threshold);
  if (!evaluation.ok()) return ReportError(evaluation.status());
  if (evaluation->segmentation.has_value()) {
    if (!options.reference.empty() || !options.reliability_plot.empty()) {
      return ReportError(absl::InvalidArgumentError(
          "--reference and --reliability-plot apply to classification models; " + options.model +
          " is a segmentation model"));
    }
    PrintSegmentationEvaluation(global, options, *evaluation);
    return kExitOk;
  }
  EvaluationReport report;
  report.evaluation = *std::move(evaluation);
  const SplitPredictions& predictions = report.evaluation.predictions;
  auto calibration = ComputeCalibration(predictions.labels, predictions.prob_positive);
  if (!calibration.ok()) return ReportError(calibration.status());
  report.calibration = *std::move(calibration);
  auto at_stored = MetricsAtStoredThreshold(options.model, predictions);
  if (!at_stored.ok()) return ReportError(at_stored.status());
  report.at_stored = *std::move(at_stored);
  if (!options.reference.empty()) {
    if (absl::Status status = CompareWithReference(options, *runner, report); !status.ok()) {
      return ReportError(status);
    }
  }
  if (!options.reliability_plot.empty()) {
    const std::string title = absl::StrCat(std::filesystem::path(options.model).filename().string(),
                                           " on ", options.split);
    if (absl::Status status =
            WriteReliabilityDiagram(report.calibration.bins, report.calibration.ece,
                                    report.calibration.brier, title, options.reliability_plot);
        !status.ok()) {
      return ReportError(status);
    }
  }
  if (global.json) {
    PrintEvaluationJson(options, report);
  } else {
    PrintEvaluationText(options, report);
  }
  return kExitOk;
}

// A segmentation model's predictions: per image its predicted foreground
// pixels in the CSV and, with --out-masks, <index>_mask.png (white on
// black) and <index>_overlay.png (the outline in red over the image, 8x
// up to 256 pixels a side).
int WriteSegmentationPredictions(const DataOptions& options, const SplitPredictions& predictions) {
  const ImageSet& images = predictions.images;
  const int64_t plane = images.height * images.width;
  std::string csv = "index,label,foreground_pixels\n";
  for (int64_t i = 0; i < images.size(); ++i) {
    const uint8_t* mask = predictions.masks.data() + i * plane;
    absl::StrAppend(&csv, i, ",", images.labels[i], ",", std::count(mask, mask + plane, 1), "\n");
  }
  if (!options.out_masks.empty()) {
    if (absl::Status status = Env::Default()->CreateDirs(options.out_masks); !status.ok()) {
      return ReportError(status);
    }
    MaskOverlayOptions overlay;
    overlay.scale = static_cast<int>(std::clamp<int64_t>(256 / images.height, 1, 8));
    for (int64_t i = 0; i < images.size(); ++i) {
      const uint8_t* mask = predictions.masks.data() + i * plane;
      const std::string stem = absl::StrCat(options.out_masks, "/", i);
      absl::Status status =
          SaveMaskPng(mask, images.height, images.width, stem + "_mask.png", overlay.scale);
      if (status.ok()) {
        status =
            SaveMaskOverlayPng(images.pixels.data() + i * images.ImageBytes(), images.height,
                               images.width, images.channels, mask, stem + "_overlay.png", overlay);
      }
      if (!status.ok()) return ReportError(status);
    }
  }
  if (absl::Status status = WriteFileAtomically(*Env::Default(), options.out, csv); !status.ok()) {
    return ReportError(status);
  }
  std::cout << "wrote " << images.size() << " predicted masks' sizes to " << options.out;
  if (!options.out_masks.empty()) {
    std::cout << " and " << 2 * images.size() << " PNGs to " << options.out_masks;
  }
  std::cout << std::endl;
  return kExitOk;
}

int PredictToCsv(const DataOptions& options, ModelRunner* runner) {
  if (runner == nullptr) return ReportError(TrainingUnavailableError("fedmi model predict"));
  runner->SetThreads(options.threads);
  auto predictions = runner->PredictSplit(options.model, options.data, options.split);
  if (!predictions.ok()) return ReportError(predictions.status());
  if (!predictions->masks.empty()) return WriteSegmentationPredictions(options, *predictions);
  if (!options.out_masks.empty()) {
    return ReportUsageError("--out-masks applies to segmentation models only");
  }
  auto stored = StoredThresholdOfFile(options.model, *predictions);
  if (!stored.ok()) return ReportError(stored.status());
  const std::vector<int64_t>& labels = predictions->labels;

  // The predicted class needs a threshold; only the model's own operating
  // threshold is a defensible one to bake into a file of predictions.
  std::string csv = stored->has_value() ? "index,label,prob_pneumonia,predicted_class\n"
                                        : "index,label,prob_pneumonia\n";
  for (size_t i = 0; i < labels.size(); ++i) {
    const float p = predictions->prob_positive[i];
    absl::StrAppend(&csv, i, ",", labels[i], ",", absl::StrFormat("%.6f", p));
    if (stored->has_value()) absl::StrAppend(&csv, ",", p >= (*stored)->threshold ? 1 : 0);
    csv += "\n";
  }
  // All or nothing, so that a failed run leaves no half-written CSV behind.
  if (absl::Status status = WriteFileAtomically(*Env::Default(), options.out, csv); !status.ok()) {
    return ReportError(status);
  }
  std::cout << "wrote " << labels.size() << " predictions to " << options.out << std::endl;
  if (stored->has_value()) {
    std::cout << "predicted_class is 1 when prob_pneumonia >= " << DescribeThreshold(**stored)
              << ", the model's operating threshold" << std::endl;
  } else {
    std::cout << "the model file stores no operating threshold, so there is no predicted_class "
                 "column"
              << std::endl;
  }
  return kExitOk;
}

// Parameter counts are those of the architecture at its default side, one
// channel and two classes (PneumoniaMNIST); they need model code, so
// without a runner they are null ("needs a training build").
int ListModels(const GlobalOptions& global, ModelRunner* runner) {
  constexpr int64_t kChannels = 1, kClasses = 2;
  nlohmann::json models = nlohmann::json::array();
  for (const ModelInfo& info : TrainableModels()) {
    nlohmann::json parameters = nullptr;
    if (runner != nullptr) {
      auto count = runner->ParameterCount(info.name, kChannels, kClasses, info.default_side);
      if (!count.ok()) return ReportError(count.status());
      parameters = *count;
    }
    models.push_back({{"name", info.name},
                      {"task", ModelTaskName(info.task)},
                      {"parameters", parameters},
                      {"min_side", info.min_side},
                      {"default_side", info.default_side},
                      {"side_multiple", info.side_multiple},
                      {"channels", "any"},
                      {"dp_compatible", info.dp_compatible},
                      {"description", info.description}});
  }
  if (global.json) {
    PrintJsonLine({{"models", models},
                   {"parameters_at", {{"channels", kChannels}, {"num_classes", kClasses}}}});
    return kExitOk;
  }
  std::cout << absl::StrFormat("%-13s %-14s %12s %8s %8s %8s %s\n", "name", "task", "parameters",
                               "min_side", "default", "multiple", "dp");
  for (const nlohmann::json& m : models) {
    const std::string parameters =
        m["parameters"].is_null() ? "-" : absl::StrCat(m["parameters"].get<int64_t>());
    std::cout << absl::StrFormat("%-13s %-14s %12s %8d %8d %8d %s\n", m["name"].get<std::string>(),
                                 m["task"].get<std::string>(), parameters, m["min_side"].get<int>(),
                                 m["default_side"].get<int>(), m["side_multiple"].get<int>(),
                                 m["dp_compatible"].get<bool>() ? "yes" : "no")
              << "    " << m["description"].get<std::string>() << "\n";
  }
  std::cout << "parameters: at the default side, 1 channel, 2 classes";
  if (runner == nullptr) std::cout << " (- : needs a training build)";
  std::cout << "; every architecture takes any number of input channels" << std::endl;
  return kExitOk;
}

void AddModelInputOptions(CLI::App* command, DataOptions& options) {
  command
      ->add_option("--model", options.model,
                   "model file: .pt (TorchScript), .safetensors or .ptl (mobile)")
      ->required();
  command
      ->add_option("--data", options.data,
                   "labelled data: a MedMNIST-style .npz with <split>_images and <split>_labels, "
                   "an image folder or a DICOM folder (docs/data.md); read at the model's input "
                   "size")
      ->required();
  command->add_option("--split", options.split, "which split of the data to use")
      ->check(CLI::IsMember({"train", "val", "test"}))
      ->capture_default_str();
  command
      ->add_option("--threads", options.threads,
                   "LibTorch threads; 0 uses every CPU this process may use")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

}  // namespace

void AddModelCommands(CLI::App& app, GlobalOptions& global, CommandResult& result,
                      std::shared_ptr<ModelRunner> runner) {
  CLI::App* model = app.add_subcommand("model", "Export, evaluate and apply global models");
  model->require_subcommand(1);

  CLI::App* list = model->add_subcommand(
      "list",
      "List the architectures a run may train: task, parameter count, input sizes, DP support");
  AddJsonFlag(list, global);
  list->callback([&global, &result, runner] {
    RunCommand(result, [&] { return ListModels(global, runner.get()); });
  });

  auto export_options = std::make_shared<ExportOptions>();
  CLI::App* export_command = model->add_subcommand(
      "export",
      "Download a run's global model to a .safetensors file (weights plus metadata), a .pt "
      "TorchScript file (loads with torch.jit.load) or a .ptl mobile file (PyTorch lite "
      "interpreter, e.g. Android)");
  export_command->add_option("RUN", export_options->run_id, "run id")
      ->required()
      ->check(CLI::PositiveNumber);
  export_command
      ->add_option("--round", export_options->round,
                   "round whose model to export (0 is the initial model); default: "
                   "the latest")
      ->check(CLI::NonNegativeNumber);
  export_command
      ->add_option("--out", export_options->out, "output file: *.safetensors, *.pt or *.ptl")
      ->required();
  export_command
      ->add_option("--format", export_options->format,
                   "pt (TorchScript), safetensors or mobile (.ptl, PyTorch lite interpreter); "
                   "default: from --out's extension")
      ->check(CLI::IsMember({"pt", "safetensors", "mobile"}));
  export_command->add_option("--quantize", export_options->quantize,
                             "mobile only: int8 stores the linear layers' weights as int8 and "
                             "runs them with dynamic int8 activations (smaller, slightly less "
                             "exact; measure with `model evaluate --reference`)");
  export_command->add_option("--model-file", export_options->model_file,
                             "for a run that trained your own TorchScript module (run start "
                             "--model-file): that file, which a .pt or .ptl is rebuilt from");
  export_command->add_option("--class-names", export_options->class_names,
                             "the classes' names in index order for the model card, e.g. "
                             "normal,pneumonia (one per class)");
  export_command->callback([&global, &result, export_options, runner] {
    RunCommand(result, [&] { return ExportModel(global, *export_options, runner.get()); });
  });

  AddModelInfoCommand(model, global, result, runner);

  auto evaluate_options = std::make_shared<DataOptions>();
  CLI::App* evaluate =
      model->add_subcommand("evaluate",
                            "Score a model file on a labelled split: auc, accuracy, sensitivity, "
                            "specificity, f1, loss, calibration (Brier score, ECE), and the "
                            "metrics at the model's stored operating threshold if it has one");
  AddModelInputOptions(evaluate, *evaluate_options);
  evaluate
      ->add_option("--threshold", evaluate_options->threshold,
                   "predict pneumonia (class 1) when P(class 1) >= threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  evaluate->add_option("--reliability-plot", evaluate_options->reliability_plot,
                       "write the reliability diagram (calibration per bin of P(class 1), "
                       "with ECE and Brier score) to this PNG file");
  evaluate->add_option("--reference", evaluate_options->reference,
                       "another model file (e.g. the .pt a .ptl was made from): report its "
                       "metrics too, and the largest difference of P(class 1)");
  AddJsonFlag(evaluate, global);
  evaluate->callback([&global, &result, evaluate_options, runner] {
    RunCommand(result, [&] { return EvaluateModelFile(global, *evaluate_options, runner.get()); });
  });

  auto convert_options = std::make_shared<ConvertOptions>();
  CLI::App* convert = model->add_subcommand(
      "convert",
      "Write a .pt or .safetensors model file as a .ptl mobile file (PyTorch lite interpreter), "
      "keeping its metadata, e.g. for `fedmi sim`'s final model");
  convert->add_option("--model", convert_options->model, "model file: .pt or .safetensors")
      ->required();
  convert->add_option("--out", convert_options->out, "mobile model file to write: *.ptl")
      ->required();
  convert->add_option("--quantize", convert_options->quantize,
                      "int8: linear layers in int8 (see `model export --quantize`)");
  convert->callback([&result, convert_options, runner] {
    RunCommand(result, [&] { return ConvertModel(*convert_options, runner.get()); });
  });

  auto predict_options = std::make_shared<DataOptions>();
  CLI::App* predict =
      model->add_subcommand("predict",
                            "Write P(pneumonia) for every image of a split to a CSV file "
                            "(index,label,prob_pneumonia; plus predicted_class at the model's "
                            "stored operating threshold if it has one)");
  AddModelInputOptions(predict, *predict_options);
  predict->add_option("--out", predict_options->out, "CSV file to write")->required();
  predict->add_option("--out-masks", predict_options->out_masks,
                      "segmentation models: directory for each image's predicted mask "
                      "(<index>_mask.png) and its outline over the image (<index>_overlay.png)");
  predict->callback([&result, predict_options, runner] {
    RunCommand(result, [&] { return PredictToCsv(*predict_options, runner.get()); });
  });
}

}  // namespace fedmi::cli
