// Tables and the learning-curve chart of bench/scarce_labels.sh's results
// (one JSON object per line), for docs/scarce-labels.md:
//
//   scarce_labels_report RESULTS.jsonl CURVES.png
//
// Records it reads:
//   {"experiment":"al","seed":S,"method":M,"stage":K,"labels":N,"auc":A}
//   {"experiment":"ssl","seed":S,"variant":V,"auc":A}
//   {"experiment":"noise","seed":S,"variant":V,"auc":A}
//   {"experiment":"audit","seed":S,"flipped":F,"top":T,"found_top":X,
//    "flagged":G,"flagged_flipped":H,"site_images":N}
// Every figure is reported as the mean and the worst (lowest AUC) over
// seeds, with the spread (highest - lowest).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/plot/line_chart.h"

namespace {

struct Stats {
  double mean = 0, low = 0, high = 0;
  int n = 0;
};

Stats Summarise(const std::vector<double>& values) {
  Stats stats;
  stats.n = static_cast<int>(values.size());
  if (values.empty()) return {NAN, NAN, NAN, 0};
  stats.low = *std::min_element(values.begin(), values.end());
  stats.high = *std::max_element(values.begin(), values.end());
  for (double v : values) stats.mean += v / values.size();
  return stats;
}

std::string Row(const Stats& s) {
  return absl::StrFormat("%.4f | %.4f | %.4f | %d", s.mean, s.low, s.high - s.low, s.n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: scarce_labels_report RESULTS.jsonl CURVES.png\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "error: cannot read " << argv[1] << "\n";
    return 1;
  }
  // method -> stage -> values, and method -> stage -> seed -> AUC
  std::map<std::string, std::map<int, std::vector<double>>> al_auc, al_labels;
  std::map<std::string, std::map<int, std::map<int64_t, double>>> al_by_seed;
  std::map<std::string, std::vector<double>> ssl, noise;
  std::map<std::string, std::map<int64_t, double>> ssl_by_seed, noise_by_seed;
  std::vector<nlohmann::json> audits;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json r = nlohmann::json::parse(line);
    const std::string kind = r["experiment"];
    if (kind == "al") {
      al_auc[r["method"]][r["stage"]].push_back(r["auc"]);
      al_by_seed[r["method"]][r["stage"]][r["seed"]] = r["auc"];
      al_labels[r["method"]][r["stage"]].push_back(r["labels"]);
    } else if (kind == "ssl") {
      ssl[r["variant"]].push_back(r["auc"]);
      ssl_by_seed[r["variant"]][r["seed"]] = r["auc"];
    } else if (kind == "noise") {
      noise[r["variant"]].push_back(r["auc"]);
      noise_by_seed[r["variant"]][r["seed"]] = r["auc"];
    } else if (kind == "audit") {
      audits.push_back(r);
    }
  }

  std::vector<fedmi::LineSeries> series;
  if (!al_auc.empty()) {
    std::cout << "\nActive learning: test AUC after each acquisition round\n\n"
                 "| method | round | labels (mean) | AUC mean | worst | spread | seeds |\n"
                 "|---|---|---|---|---|---|---|\n";
    for (const auto& [method, stages] : al_auc) {
      fedmi::LineSeries line;
      line.label = method;
      for (const auto& [stage, values] : stages) {
        const Stats auc = Summarise(values);
        const Stats labels = Summarise(al_labels[method][stage]);
        std::cout << absl::StrFormat("| %s | %d | %.0f | %s |\n", method, stage, labels.mean,
                                     Row(auc));
        line.x.push_back(labels.mean);
        line.y.push_back(auc.mean);
        line.low.push_back(auc.low);
        line.high.push_back(auc.high);
      }
      series.push_back(std::move(line));
    }
    fedmi::LineChartOptions options;
    options.title = "Active learning on PneumoniaMNIST, 5 sites, Dirichlet 0.5";
    options.x_label = "labelled training images (all sites)";
    options.y_label = "test AUC, mean over seeds, band from lowest to highest";
    options.legend_width = fedmi::LineChartLegendWidth(series);
    if (absl::Status written = fedmi::WriteLineChart(series, options, argv[2]); !written.ok()) {
      std::cerr << "error: " << written.message() << "\n";
      return 1;
    }
    std::cout << "\nchart: " << argv[2] << "\n";
    if (al_by_seed.count("random")) {
      std::cout << "\nAgainst random acquisition of as many labels, paired by seed (AUC "
                   "difference)\n\n| method | round | mean | lowest | highest | seeds better |\n"
                   "|---|---|---|---|---|---|\n";
      for (const auto& [method, stages] : al_by_seed) {
        if (method == "random") continue;
        for (const auto& [stage, by_seed] : stages) {
          if (stage == 0) continue;
          std::vector<double> differences;
          int better = 0;
          for (const auto& [seed, auc] : by_seed) {
            auto random = al_by_seed["random"][stage].find(seed);
            if (random == al_by_seed["random"][stage].end()) continue;
            differences.push_back(auc - random->second);
            better += auc > random->second ? 1 : 0;
          }
          const Stats d = Summarise(differences);
          std::cout << absl::StrFormat("| %s | %d | %+.4f | %+.4f | %+.4f | %d of %d |\n", method,
                                       stage, d.mean, d.low, d.high, better, d.n);
        }
      }
    }
  }
  auto paired = [](const std::map<std::string, std::map<int64_t, double>>& by_seed,
                   const std::string& base, const std::string& other) {
    std::vector<double> gains;
    if (!by_seed.count(base) || !by_seed.count(other)) return Summarise(gains);
    for (const auto& [seed, auc] : by_seed.at(other)) {
      auto found = by_seed.at(base).find(seed);
      if (found != by_seed.at(base).end()) gains.push_back(auc - found->second);
    }
    return Summarise(gains);
  };
  if (!ssl.empty()) {
    std::cout << "\nSemi-supervised: test AUC with 10% of the labels\n\n"
                 "| training | AUC mean | worst | spread | seeds |\n|---|---|---|---|---|\n";
    for (const auto& [variant, values] : ssl) {
      std::cout << absl::StrFormat("| %s | %s |\n", variant, Row(Summarise(values)));
    }
    for (const auto& [variant, by_seed] : ssl_by_seed) {
      if (variant == "labelled-only") continue;
      const Stats gain = paired(ssl_by_seed, "labelled-only", variant);
      std::cout << absl::StrFormat(
          "\ngain of %s over labelled-only, paired by seed: mean %+.4f, lowest %+.4f, highest "
          "%+.4f (%d seeds)\n",
          variant, gain.mean, gain.low, gain.high, gain.n);
      for (const auto& [seed, auc] : by_seed) {
        auto base = ssl_by_seed["labelled-only"].find(seed);
        if (base == ssl_by_seed["labelled-only"].end()) continue;
        std::cout << absl::StrFormat("| %d | %.4f | %.4f | %+.4f |\n", seed, base->second, auc,
                                     auc - base->second);
      }
    }
  }
  if (!noise.empty()) {
    std::cout << "\nLabel noise: test AUC\n\n"
                 "| training | AUC mean | worst | spread | seeds |\n|---|---|---|---|---|\n";
    for (const auto& [variant, values] : noise) {
      std::cout << absl::StrFormat("| %s | %s |\n", variant, Row(Summarise(values)));
    }
    double lost_sum = 0, recovered_sum = 0;
    for (const auto& [seed, clean] : noise_by_seed["clean"]) {
      const double noisy = noise_by_seed["noisy"][seed];
      const double weighted = noise_by_seed["down-weighted"][seed];
      const double lost = clean - noisy;
      if (lost > 0) {
        lost_sum += lost;
        recovered_sum += weighted - noisy;
      }
      std::cout << absl::StrFormat(
          "seed %d: lost to noise %+.4f, recovered by down-weighting %+.4f (%s)\n", seed, lost,
          weighted - noisy,
          lost > 0 ? absl::StrFormat("%.0f%% of the loss", 100 * (weighted - noisy) / lost)
                   : std::string("no loss to recover"));
    }
    // Pooled over the seeds where the noise cost AUC: a seed whose loss is
    // within the swing would otherwise give a ratio of noise over noise.
    std::cout << absl::StrFormat(
        "over the seeds where the noise cost AUC: lost %+.4f, recovered %+.4f (%s)\n", lost_sum,
        recovered_sum,
        lost_sum > 0 ? absl::StrFormat("%.0f%% of the loss", 100 * recovered_sum / lost_sum)
                     : std::string("no loss to recover"));
  }
  if (!audits.empty()) {
    std::cout << "\nLabel audit of the noisy site\n\n"
                 "| seed | site images | flipped | in top 10% | recall@10% | random | flagged | "
                 "flipped among flagged |\n|---|---|---|---|---|---|---|---|\n";
    std::vector<double> recalls;
    for (const nlohmann::json& a : audits) {
      const double recall = a["found_top"].get<double>() / a["flipped"].get<double>();
      recalls.push_back(recall);
      std::cout << absl::StrFormat(
          "| %d | %d | %d | %d of %d | %.2f | %.2f | %d | %d |\n", a["seed"].get<int>(),
          a["site_images"].get<int>(), a["flipped"].get<int>(), a["found_top"].get<int>(),
          a["top"].get<int>(), recall, a["top"].get<double>() / a["site_images"].get<double>(),
          a["flagged"].get<int>(), a["flagged_flipped"].get<int>());
    }
    const Stats recall = Summarise(recalls);
    std::cout << absl::StrFormat("recall in the top 10%%: mean %.2f, worst %.2f (%d seeds)\n",
                                 recall.mean, recall.low, recall.n);
  }
  return 0;
}
