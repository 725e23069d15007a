#include "cli/sim_label_flags.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/evaluation/acquisition.h"

namespace fedmi::cli {

void AddSimLabelOptions(CLI::App* sim, SimLabelFlags* flags) {
  sim->add_option("--shards", flags->shards,
                  "train on the site-<k>.npz shards in this directory (from `fedmi data split`, "
                  "perhaps with --labelled-fraction and labels imported since) instead of "
                  "splitting --data, which then only gives the test split");
  sim->add_option("--semi-supervised", flags->semi_supervised,
                  "every site also learns from its unlabelled images: pseudo-label, fixmatch "
                  "or off (fedmi-client --semi-supervised; docs/scarce-labels.md)")
      ->check(CLI::IsMember({"off", "pseudo-label", "fixmatch"}))
      ->capture_default_str();
  sim->add_option("--al-rounds", flags->al_rounds,
                  "every site ranks its unlabelled images at the start of these rounds and writes "
                  "a list to label under its kit's active-learning/ (with --insecure, under "
                  "active-learning/SITE in the working directory; fedmi-client --al-rounds); "
                  "nobody labels them during a simulation");
  sim->add_option("--al-budget", flags->al_budget, "with --al-rounds: fedmi-client --al-budget");
  sim->add_option(
      "--al-method", flags->al_method,
      absl::StrCat("with --al-rounds: ", AcquisitionMethodNames(), " (fedmi-client --al-method)"));
  sim->add_option("--noisy-labels", flags->noisy_labels,
                  "SITE:FILE, repeatable: the site trains on the images flagged in FILE (from "
                  "`fedmi data audit-labels`) at --noisy-label-weight")
      ->type_name("SITE:FILE");
  sim->add_option("--noisy-label-weight", flags->noisy_label_weight,
                  "weight of flagged images at the sites given --noisy-labels (default 0)")
      ->check(CLI::Range(0.0, 1.0));
  sim->add_option("--round-models", flags->round_models,
                  "also write the global model of these rounds (e.g. 3 or 2,5) as "
                  "round-N-model.pt in the work directory: with several local epochs, an early "
                  "round's model finds more flipped labels with `fedmi data audit-labels` "
                  "(docs/scarce-labels.md)")
      ->type_name("N[,N...]");
}

absl::StatusOr<std::map<std::string, std::vector<std::string>>> SiteLabelFlags(
    const SimLabelFlags& flags, int sites) {
  if (flags.al_rounds.empty() && (!flags.al_budget.empty() || !flags.al_method.empty())) {
    return absl::InvalidArgumentError("--al-budget and --al-method go with --al-rounds");
  }
  if (!flags.al_budget.empty()) {
    absl::StatusOr<AcquisitionBudget> budget = ParseAcquisitionBudget(flags.al_budget);
    if (!budget.ok())
      return absl::InvalidArgumentError(absl::StrCat("--al-", budget.status().message()));
  }
  if (!flags.al_method.empty()) {
    absl::StatusOr<AcquisitionMethod> method = ParseAcquisitionMethod(flags.al_method);
    if (!method.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--al-method: ", method.status().message()));
    }
  }
  std::map<std::string, std::vector<std::string>> of_site;
  for (int k = 1; k <= sites; ++k) {
    std::vector<std::string>& site_flags = of_site[absl::StrCat("site-", k)];
    if (flags.semi_supervised != "off") {
      site_flags.insert(site_flags.end(), {"--semi-supervised", flags.semi_supervised});
    }
    if (!flags.al_rounds.empty()) {
      site_flags.insert(site_flags.end(), {"--al-rounds", flags.al_rounds});
      // Each site would refuse them at its start, one log at a time.
      if (!flags.al_budget.empty()) {
        site_flags.insert(site_flags.end(), {"--al-budget", flags.al_budget});
      }
      if (!flags.al_method.empty()) {
        site_flags.insert(site_flags.end(), {"--al-method", flags.al_method});
      }
    }
  }
  for (const std::string& entry : flags.noisy_labels) {
    const size_t colon = entry.find(':');
    absl::string_view site = absl::string_view(entry).substr(0, colon);
    absl::ConsumePrefix(&site, "site-");
    int k = 0;
    if (colon == std::string::npos || colon + 1 == entry.size() || !absl::SimpleAtoi(site, &k) ||
        k < 1 || k > sites) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--noisy-labels '", entry, "' is not SITE:FILE with SITE site-1 to site-", sites));
    }
    std::vector<std::string>& site_flags = of_site[absl::StrCat("site-", k)];
    if (std::find(site_flags.begin(), site_flags.end(), "--noisy-labels") != site_flags.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--noisy-labels names site-", k, " twice; give each site one list"));
    }
    site_flags.insert(site_flags.end(), {"--noisy-labels", entry.substr(colon + 1)});
    if (flags.noisy_label_weight >= 0) {
      site_flags.insert(site_flags.end(),
                        {"--noisy-label-weight", absl::StrCat(flags.noisy_label_weight)});
    }
  }
  return of_site;
}

absl::StatusOr<std::vector<int>> RoundsToExport(const SimLabelFlags& flags, int rounds) {
  std::set<int> chosen;
  for (absl::string_view entry : absl::StrSplit(flags.round_models, ',', absl::SkipEmpty())) {
    int round = 0;
    if (!absl::SimpleAtoi(entry, &round) || round < 1 || round > rounds) {
      return absl::InvalidArgumentError(
          absl::StrCat("--round-models '", entry, "' is not a round from 1 to ", rounds));
    }
    chosen.insert(round);
  }
  return std::vector<int>(chosen.begin(), chosen.end());
}

}  // namespace fedmi::cli
