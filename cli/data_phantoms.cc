// `fedmi data phantoms`: a synthetic lung-segmentation data set (chest-like
// images, two jittered ellipsoid lungs, exact masks) as an npz, to try
// segmentation training, evaluation and federations without patient data.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command_support.h"
#include "cli/commands.h"
#include "common/data/npz.h"
#include "common/data/phantoms.h"

namespace fedmi::cli {
namespace {

struct PhantomCommandOptions {
  std::string out;
  PhantomOptions phantoms;
  std::vector<double> split_fractions = {0.7, 0.15, 0.15};
  bool no_body = false;
};

int WritePhantoms(const GlobalOptions& global, const PhantomCommandOptions& options) {
  if (options.split_fractions.size() != 3) {
    return ReportUsageError(
        absl::StrCat("--split-fractions needs three shares (train,val,test), got ",
                     options.split_fractions.size()));
  }
  PhantomOptions phantoms = options.phantoms;
  phantoms.body_outline = !options.no_body;
  for (int i = 0; i < 3; ++i) phantoms.split_fractions[i] = options.split_fractions[i];
  auto npz = PhantomNpz(phantoms);
  if (!npz.ok()) return ReportError(npz.status());
  if (absl::Status written = WriteNpz(options.out, *npz); !written.ok())
    return ReportError(written);
  const int64_t train = npz->at("train_images").shape[0];
  const int64_t val = npz->at("val_images").shape[0];
  const int64_t test = npz->at("test_images").shape[0];
  if (global.json) {
    PrintJsonLine({{"path", options.out},
                   {"size", phantoms.size},
                   {"seed", phantoms.seed},
                   {"train", train},
                   {"val", val},
                   {"test", test}});
    return kExitOk;
  }
  std::cout << absl::StrFormat(
                   "wrote %d phantom images of %dx%d with lung masks to %s (train %d, val %d, "
                   "test %d; seed %d)",
                   phantoms.count, phantoms.size, phantoms.size, options.out, train, val, test,
                   phantoms.seed)
            << std::endl;
  return kExitOk;
}

}  // namespace

void AddDataPhantomsCommand(CLI::App* data, GlobalOptions& global, CommandResult& result) {
  auto options = std::make_shared<PhantomCommandOptions>();
  CLI::App* command = data->add_subcommand(
      "phantoms",
      "Write a synthetic lung-segmentation data set as an .npz: noisy chest-like images with two "
      "ellipsoid lungs at jittered positions, sizes and rotations, and their exact masks "
      "(train/val/test _images, _masks, _labels; label 1 = an opacity in a lung)");
  command->add_option("--out", options->out, "the .npz to write")->required();
  AddCheckedOption(command, "--count", options->phantoms.count, "images over all splits",
                   CLI::Range(int64_t{1}, int64_t{1000000}));
  AddCheckedOption(command, "--size", options->phantoms.size, "height and width in pixels",
                   CLI::Range(int64_t{16}, int64_t{1024}));
  command->add_option("--seed", options->phantoms.seed, "seed: the same seed, the same images")
      ->capture_default_str();
  command
      ->add_option("--split-fractions", options->split_fractions,
                   "shares of train,val,test, summing to 1")
      ->delimiter(',')
      ->capture_default_str();
  AddCheckedOption(command, "--noise", options->phantoms.noise_sigma,
                   "standard deviation of the Gaussian noise, in grey levels",
                   CLI::Range(0.0, 100.0));
  command->add_flag("--no-body", options->no_body,
                    "no body outline: tissue fills the image around the lungs");
  command->add_flag("--json", global.json,
                    "print one JSON object as the last line of stdout instead of text");
  command->callback([&global, &result, options] {
    RunCommand(result, [&] { return WritePhantoms(global, *options); });
  });
}

}  // namespace fedmi::cli
