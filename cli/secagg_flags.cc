#include "cli/secagg_flags.h"

#include "absl/strings/str_cat.h"
#include "cli/command_support.h"
#include "common/runspec/strategy_names.h"

namespace fedmi::cli {
namespace {

// Sites' default policy (min_secagg_peers = 3) needs every site to have 3
// neighbours, so a secure round needs at least 4 sites.
constexpr int kAutoSecAggSites = 4;

}  // namespace

void AddSecAggOptions(CLI::App* command, SecAggFlags* flags) {
  AddCheckedOption(
      command, "--secure-aggregation", flags->mode,
      "mask each site's update so the coordinator learns only their sum: on, off, "
      "or auto (on for fedavg and norm_bounded runs of at least 4 sites: a site's default "
      "policy wants 3 neighbours, and the other robust strategies need each site's update)",
      CLI::IsMember({"on", "off", "auto"}));
  AddCheckedOption(command, "--secagg-threshold", flags->threshold,
                   "shares needed to unmask; rounds fail when t + 1 sites do not survive (0: "
                   "2/3 of the neighbours + 1)",
                   CLI::Range(0, 1 << 24));
  AddCheckedOption(command, "--secagg-neighbours", flags->neighbours,
                   "sites each site masks with (SecAgg+ graph degree; 0: every other site)",
                   CLI::Range(0, 1 << 24));
  AddCheckedOption(command, "--secagg-clip", flags->clip,
                   "per-parameter clip of a site's update before quantization (0: 1.0)",
                   CLI::NonNegativeNumber);
  AddCheckedOption(command, "--secagg-max-examples", flags->max_examples,
                   "example count that gets full weight (0: the largest site's training set)",
                   CLI::NonNegativeNumber);
}

absl::Status ApplySecAggFlags(const SecAggFlags& flags, int sites, v1::RunSpec* spec) {
  const bool on = flags.mode == "on" || (flags.mode == "auto" && sites >= kAutoSecAggSites &&
                                         !NeedsEachSiteUpdate(spec->strategy()));
  spec->set_secure_aggregation(on);
  spec->clear_secagg();
  if (!on) {
    if (flags.threshold != 0 || flags.neighbours != 0 || flags.clip != 0 ||
        flags.max_examples != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--secagg-* settings need secure aggregation, which is off",
          flags.mode == "auto" ? absl::StrCat(" (auto turns it on for runs of at least ",
                                              kAutoSecAggSites, " sites, this one has ", sites, ")")
                               : ""));
    }
    return absl::OkStatus();
  }
  spec->mutable_secagg()->set_threshold(flags.threshold);
  spec->mutable_secagg()->set_neighbours(flags.neighbours);
  spec->mutable_secagg()->set_clip(flags.clip);
  spec->mutable_secagg()->set_max_examples(flags.max_examples);
  return absl::OkStatus();
}

std::string DescribeSecAgg(const v1::RunSpec& spec) {
  if (!spec.secure_aggregation()) return "off";
  const v1::SecAggSettings& s = spec.secagg();
  return absl::StrCat(
      "on (threshold ", s.threshold() > 0 ? absl::StrCat(s.threshold()) : "auto", ", ",
      s.neighbours() > 0 ? absl::StrCat(s.neighbours(), " neighbours") : "complete graph",
      ", clip ", s.clip() > 0 ? s.clip() : 1.0, ")");
}

}  // namespace fedmi::cli
