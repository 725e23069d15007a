// `fedmi data to-dicom`: a labelled data set written as a hospital-style
// DICOM folder (labels.csv plus .dcm files in the encodings real exports
// use), to try a site's DICOM path, `fedmi data inspect` and the reader's
// handling of MONOCHROME1, rescaled 12-bit and compressed files before real
// data is at hand.
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/data/dicom_export.h"
#include "common/data/image_data.h"

namespace fedmi::cli {
namespace {

struct ToDicomOptions {
  std::string input;
  std::string out_dir;
  std::string encoding = "mixed";
  std::string patient_prefix = "PAT";
  std::vector<std::string> class_names = {"normal", "pneumonia"};
};

int WriteDicomFolder(const GlobalOptions& global, const ToDicomOptions& options) {
  auto encodings = ParseDicomEncodings(options.encoding);
  if (!encodings.ok()) return ReportUsageError(std::string(encodings.status().message()));
  std::map<std::string, ImageSet> splits;
  for (const char* split : {"train", "val", "test"}) {
    SiteDataOptions native;
    absl::StatusOr<ImageSet> images = LoadDataSplit(options.input, split, native);
    if (absl::IsNotFound(images.status()) && std::string(split) != "train") continue;
    if (!images.ok()) return ReportError(images.status());
    std::cout << "  " << split << ": " << images->size() << " images" << std::endl;
    splits[split] = *std::move(images);
  }
  DicomExportOptions export_options;
  export_options.encodings = *encodings;
  export_options.class_names = options.class_names;
  export_options.patient_prefix = options.patient_prefix;
  auto report = ExportAsDicomFolder(splits, options.out_dir, export_options);
  if (!report.ok()) return ReportError(report.status());
  nlohmann::json per_encoding(report->per_encoding);
  if (global.json) {
    PrintJsonLine({{"files", report->files},
                   {"per_encoding", per_encoding},
                   {"labels_csv", report->labels_csv}});
    return kExitOk;
  }
  std::cout << "wrote " << report->files << " DICOM files to " << options.out_dir << " ("
            << per_encoding.dump() << "), labels in " << report->labels_csv
            << "\n  the patient names and IDs in them are made up" << std::endl;
  return kExitOk;
}

}  // namespace

void AddDataToDicomCommand(CLI::App* data, GlobalOptions& global, CommandResult& result) {
  auto options = std::make_shared<ToDicomOptions>();
  CLI::App* command = data->add_subcommand(
      "to-dicom",
      "Write a labelled data set (.npz or image folder) as a DICOM folder with labels.csv, in "
      "the encodings hospital exports use, with made-up patient attributes: a test set for a "
      "site's DICOM path");
  command->add_option("--input", options->input, "labelled data: .npz, image or DICOM folder")
      ->required();
  command->add_option("--out", options->out_dir, "folder to write (created)")->required();
  AddCheckedOption(
      command, "--encoding", options->encoding,
      "plain, monochrome1 (stored inverted), rescaled-12bit (12 bits with rescale "
      "slope and intercept), jpeg-ls, rle, or mixed (each in turn)",
      CLI::IsMember({"plain", "monochrome1", "rescaled-12bit", "jpeg-ls", "rle", "mixed"}));
  command
      ->add_option("--patient-prefix", options->patient_prefix, "prefix of the made-up patient IDs")
      ->capture_default_str();
  command->add_option("--class-names", options->class_names, "class names by index, for labels.csv")
      ->capture_default_str();
  command->add_flag("--json", global.json,
                    "print one JSON object as the last line of stdout instead of text");
  command->callback([&global, &result, options] {
    RunCommand(result, [&] { return WriteDicomFolder(global, *options); });
  });
}

}  // namespace fedmi::cli
