#include "cli/run_report.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "cli/audit_entry_text.h"
#include "cli/command_support.h"
#include "cli/run_facts.h"
#include "cli/secagg_flags.h"
#include "common/crypto/sha256.h"
#include "common/runspec/dp_spec.h"

namespace fedmi::cli {
namespace {

// Free text inside a table cell.
std::string Cell(absl::string_view text) {
  return absl::StrReplaceAll(OneLine(text), {{"|", "\\|"}});
}

void RenderSummary(std::string& out, const v1::RunStatus& run, const RunFacts& facts) {
  absl::StrAppend(&out, "# Audit report: federated training run ", run.run_id(), "\n\n");
  absl::StrAppend(&out, "- **Run:** ", run.run_id(), "\n");
  absl::StrAppend(&out, "- **State:** ", run.state().empty() ? "unknown" : run.state(), ", ",
                  run.completed_rounds(), " of ", run.spec().rounds(), " rounds completed\n");
  if (facts.started != nullptr) {
    absl::StrAppend(&out, "- **Started by:** ", MarkdownCode(facts.started->actor()), " at ",
                    ReadableTime(facts.started->time()), " (", SeqRef(*facts.started), ")\n");
  } else {
    absl::StrAppend(&out,
                    "- **Started by:** unknown: the audit log has no run.started entry for this "
                    "run (created ",
                    FormatUnixTime(run.created_at()), " according to the run status)\n");
  }
  if (facts.finished != nullptr) {
    absl::StrAppend(&out, "- **Finished:** ", ReadableTime(facts.finished->time()), " (",
                    SeqRef(*facts.finished), ")\n");
  }
  if (!run.error().empty()) absl::StrAppend(&out, "- **Error:** ", OneLine(run.error()), "\n");
}

void RenderSpec(std::string& out, const v1::RunStatus& run) {
  const v1::RunSpec& spec = run.spec();
  absl::StrAppend(&out, "\n## Training specification\n\n");
  absl::StrAppend(&out, "- **Spec SHA-256:** ", MarkdownCode(HexEncode(run.spec_sha256())), "\n");
  absl::StrAppend(&out, "- **Model:** ", MarkdownCode(spec.model()), ", ", spec.num_classes(),
                  " classes\n");
  absl::StrAppend(&out, "- **Aggregation strategy:** ", MarkdownCode(spec.strategy()), "\n");
  absl::StrAppend(
      &out, "- **Rounds:** ", spec.rounds(), "; each needs at least ", spec.min_sites(),
      " sites, at most ",
      spec.max_sites() > 0 ? absl::StrCat(spec.max_sites()) : std::string("every connected site"),
      "; ",
      spec.round_timeout_s() > 0 ? absl::StrFormat("round timeout %g s", spec.round_timeout_s())
                                 : std::string("no round timeout"),
      "; ", spec.max_round_retries(), " retries of a failed round\n");
  absl::StrAppend(&out, "- **Local training:** ", spec.local_epochs(),
                  " epoch(s) per round, batch size ", spec.batch_size(), ", learning rate ",
                  absl::StrFormat("%g", spec.lr()), ", optimizer ", spec.optimizer(), ", seed ",
                  spec.seed(), "\n");
}

void RenderPrivacy(std::string& out, const v1::RunSpec& spec) {
  absl::StrAppend(&out, "\n## Privacy settings\n\n");
  absl::StrAppend(&out,
                  "- Sites train on their own data. What reaches the coordinator is model "
                  "updates, example counts and evaluation metrics, never patient records.\n");
  if (spec.secure_aggregation()) {
    absl::StrAppend(
        &out, "- **Secure aggregation:** ", DescribeSecAgg(spec), ", examples per site capped at ",
        spec.secagg().max_examples() > 0 ? absl::StrCat(spec.secagg().max_examples())
                                         : std::string("the largest site's training set"),
        ". The coordinator receives masked updates and can recover only their sum, never one "
        "site's update.\n");
  } else {
    absl::StrAppend(&out,
                    "- **Secure aggregation:** off. The coordinator receives each site's model "
                    "update in the clear.\n");
  }
  absl::StrAppend(&out, "- **Differential privacy:** ", DescribeDp(spec.dp()), "\n");
}

// Epsilon after each round as the log recorded it, and what the run status
// computes now: an ethics board reads the number, an auditor recomputes it
// from sigma, C, q and steps.
void RenderPrivacyBudget(std::string& out, const v1::RunStatus& run, const RunFacts& facts) {
  if (!run.has_privacy()) return;
  const v1::PrivacyBudget& budget = run.privacy();
  absl::StrAppend(&out, "\n## Privacy budget\n\n");
  absl::StrAppend(
      &out,
      absl::StrFormat("- **Spent:** epsilon %s of the target %g at delta %g after %d committed "
                      "round(s)%s.\n",
                      FormatEpsilon(budget.epsilon_spent()), budget.target_epsilon(),
                      budget.delta(), budget.rounds_accounted(),
                      budget.exhausted() ? "; no further round fits the budget" : ""));
  if (!budget.sites().empty()) {
    std::vector<std::string> sites;
    for (const v1::SitePrivacy& site : budget.sites()) {
      sites.push_back(absl::StrFormat("%s %s (%d rounds)", MarkdownCode(site.site()),
                                      FormatEpsilon(site.epsilon()), site.rounds()));
    }
    absl::StrAppend(&out, "- **Per site** (each over the rounds its update is in): ",
                    absl::StrJoin(sites, ", "), ".\n");
  }
  // Site level adds who was in the sum (lost noise shares cost more) and the
  // noise the round really had.
  const bool site_level = run.spec().dp().level() == v1::DP_LEVEL_SITE;
  absl::StrAppend(
      &out, "\n| Round | Epsilon after | Noise multiplier | Clip | Sample rate | Steps |",
      site_level ? " Sites in the sum | Round noise multiplier |" : "",
      " Audit entry |\n|---|---|---|---|---|---|", site_level ? "---|---|" : "", "---|\n");
  for (const auto& [round, round_facts] : facts.rounds) {
    if (round_facts.privacy_spent == nullptr) continue;
    const DetailJson detail = DetailOf(*round_facts.privacy_spent);
    auto cell = [&](const char* key) {
      auto it = detail.find(key);
      return it == detail.end() ? std::string("-") : it->dump();
    };
    absl::StrAppend(&out, "| ", round, " | ", cell("epsilon"), " | ", cell("noise_multiplier"),
                    " | ", cell("clip_norm"), " | ", cell("sample_rate"), " | ", cell("steps"),
                    " | ");
    if (site_level) {
      absl::StrAppend(&out, cell("contributing_sites"), " | ", cell("round_noise_multiplier"),
                      " | ");
    }
    absl::StrAppend(&out, SeqRef(*round_facts.privacy_spent), " |\n");
  }
}

void RenderSites(std::string& out, const RunFacts& facts) {
  absl::StrAppend(&out, "\n## Participating sites\n\n");
  if (facts.sites.empty()) {
    absl::StrAppend(&out, "No site took part.\n");
    return;
  }
  absl::StrAppend(&out,
                  "| Site | Rounds | Updates received | Examples (sum over updates) | "
                  "Dropped | Refused |\n");
  absl::StrAppend(&out, "|---|---|---|---|---|---|\n");
  for (const auto& [site, site_facts] : facts.sites) {
    std::vector<std::string> rounds;
    for (int32_t round : site_facts.rounds) rounds.push_back(absl::StrCat(round));
    absl::StrAppend(&out, "| ", MarkdownCode(site), " | ",
                    rounds.empty() ? "-" : absl::StrJoin(rounds, ", "), " | ", site_facts.updates,
                    " | ", site_facts.examples, " | ", site_facts.dropped, " | ",
                    site_facts.refused, " |\n");
  }
}

std::string MetricCell(const v1::Metrics* status_metrics, const DetailJson& logged, const char* key,
                       double (v1::Metrics::*getter)() const) {
  if (status_metrics != nullptr) return FormatMetric((status_metrics->*getter)());
  return FormatMetric(NumberField(logged, key));
}

void RenderRounds(std::string& out, const RunFacts& facts) {
  absl::StrAppend(&out, "\n## Rounds\n\n");
  if (facts.rounds.empty()) {
    absl::StrAppend(&out, "No round was opened.\n");
    return;
  }
  absl::StrAppend(&out,
                  "| Round | State | Sites | AUC | Accuracy | Sensitivity | Specificity | "
                  "Global model SHA-256 |\n");
  absl::StrAppend(&out, "|---|---|---|---|---|---|---|---|\n");
  for (const auto& [number, round] : facts.rounds) {
    std::string state;
    if (round.status != nullptr) {
      state = round.status->state();
    } else if (round.evaluated != nullptr) {
      state = "evaluated";
    } else if (round.aggregated != nullptr) {
      state = "aggregated";
    } else {
      state = "opened";
    }
    std::string sites = absl::StrCat(round.sites.size());
    if (!round.left.empty())
      absl::StrAppend(&sites, " (", round.left.size(), " dropped or refused)");
    // The status's metrics when it has them; else what the log recorded.
    const v1::Metrics* status_metrics =
        round.status != nullptr && round.status->eval_metrics().examples() > 0
            ? &round.status->eval_metrics()
            : nullptr;
    const bool measured = status_metrics != nullptr || !round.logged_metrics.empty();
    // A named reference: C++17 lambdas cannot capture a structured binding.
    const auto& logged_metrics = round.logged_metrics;
    auto metric = [&](const char* key, double (v1::Metrics::*getter)() const) {
      return measured ? MetricCell(status_metrics, logged_metrics, key, getter) : std::string("-");
    };
    std::string model_sha256 =
        round.status != nullptr ? HexEncode(round.status->model_sha256()) : "";
    if (model_sha256.empty()) model_sha256 = round.logged_model_sha256;
    absl::StrAppend(&out, "| ", number, " | ", Cell(state), " | ", sites, " | ",
                    metric("auc", &v1::Metrics::auc), " | ",
                    metric("accuracy", &v1::Metrics::accuracy), " | ",
                    metric("sensitivity", &v1::Metrics::sensitivity), " | ",
                    metric("specificity", &v1::Metrics::specificity), " | ",
                    MarkdownCode(model_sha256), " |\n");
  }
}

void RenderList(std::string& out, const std::string& title, const std::vector<std::string>& items,
                const std::string& none) {
  absl::StrAppend(&out, "\n## ", title, "\n\n");
  if (items.empty()) {
    absl::StrAppend(&out, none, "\n");
    return;
  }
  for (const auto& item : items) absl::StrAppend(&out, "- ", item, "\n");
}

void RenderVerification(std::string& out, const v1::RunStatus& run, const RunFacts& facts) {
  absl::StrAppend(&out, "\n## How to verify\n\n");
  if (facts.entries > 0) {
    absl::StrAppend(&out, "This report was built from the coordinator's run status and the ",
                    facts.entries, " audit log entries about run ", run.run_id(), " (seq ",
                    facts.first_seq, " to ", facts.last_seq, "). ");
  } else {
    absl::StrAppend(&out,
                    "This report was built from the coordinator's run status alone: the "
                    "audit log holds no entries about run ",
                    run.run_id(), ". ");
  }
  absl::StrAppend(&out,
                  "To check that the log is complete and unaltered, signed by the coordinator's "
                  "certificate from the project CA, run `fedmi --config fedmi.toml audit verify` "
                  "with an auditor's or admin's kit against the coordinator, or `fedmi --config "
                  "fedmi.toml audit verify --file audit.jsonl` offline on an export made with "
                  "`fedmi audit export`; each site can add `--receipts DIR` to check that its "
                  "signed upload receipts are in the log.\n");
}

}  // namespace

std::string RenderRunReport(const v1::RunStatus& run, const std::vector<v1::AuditEntry>& entries) {
  const RunFacts facts = GatherRunFacts(run, entries);
  std::string out;
  RenderSummary(out, run, facts);
  RenderSpec(out, run);
  RenderPrivacy(out, run.spec());
  RenderPrivacyBudget(out, run, facts);
  RenderSites(out, facts);
  RenderRounds(out, facts);
  RenderList(out, "Failures, refusals and drops", facts.incidents, "None recorded.");
  RenderList(out, "Model exports", facts.exports, "None recorded.");
  if (!facts.discrepancies.empty()) {
    RenderList(out, "Disagreements between the run status and the audit log", facts.discrepancies,
               "");
  }
  RenderVerification(out, run, facts);
  return out;
}

}  // namespace fedmi::cli
