#include "cli/run_report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "cli/admin_client.h"
#include "cli/command_support.h"
#include "cli/secagg_flags.h"
#include "common/crypto/sha256.h"

namespace fedmi::cli {
namespace {

// Ordered, so that a summary shows the keys as the coordinator stored them.
using Json = nlohmann::ordered_json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string DumpJson(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The entry's detail as an object; anything else (malformed, not an object)
// becomes an empty one, so a damaged entry blanks fields instead of failing.
Json DetailOf(const v1::AuditEntry& entry) {
  Json json = Json::parse(entry.detail_json(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return Json::object();
  return json;
}

std::string StringField(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return DumpJson(*it);
}

double NumberField(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

int64_t IntField(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return 0;
  return it->get<int64_t>();
}

// -1 when absent or not a boolean.
int BoolField(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_boolean()) return -1;
  return it->get<bool>() ? 1 : 0;
}

std::vector<std::string> StringsField(const Json& object, const char* key) {
  std::vector<std::string> values;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return values;
  for (const auto& value : *it) {
    if (value.is_string()) values.push_back(value.get<std::string>());
  }
  return values;
}

// ---- Markdown --------------------------------------------------------------

std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
}

// Free text inside a table cell.
std::string Cell(absl::string_view text) {
  return absl::StrReplaceAll(OneLine(text), {{"|", "\\|"}});
}

std::string Code(absl::string_view text) {
  if (text.empty()) return "-";
  return absl::StrCat("`", absl::StrReplaceAll(OneLine(text), {{"`", "'"}}), "`");
}

// "2026-11-28 10:00:00 UTC" from the log's RFC 3339 time.
std::string ReadableTime(const std::string& rfc3339) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error)) {
    return rfc3339.empty() ? "an unknown time" : rfc3339;
  }
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", time, absl::UTCTimeZone());
}

std::string SeqRef(const v1::AuditEntry& entry) { return absl::StrCat("audit seq ", entry.seq()); }

// A reason for a bullet; "no reason given" when empty.
std::string Reason(const std::string& reason) {
  return reason.empty() ? "no reason given" : OneLine(reason);
}

bool IsDroppedState(const std::string& state) { return state == "dropped" || state == "refused"; }

// ---- What the status and the log say about the run --------------------------

struct RoundFacts {
  std::vector<std::string> sites;  // in the order first seen
  std::set<std::string> left;      // dropped or refused
  const v1::RoundStatus* status = nullptr;
  std::string logged_model_sha256;
  const v1::AuditEntry* aggregated = nullptr;
  const v1::AuditEntry* evaluated = nullptr;
  Json logged_metrics = Json::object();
  int logged_secure_aggregation = -1;  // from round.opened; -1: not logged
};

struct SiteFacts {
  std::set<int32_t> rounds;
  int updates = 0;
  int64_t examples = 0;
  int dropped = 0;
  int refused = 0;
};

struct RunFacts {
  const v1::AuditEntry* started = nullptr;
  const v1::AuditEntry* finished = nullptr;
  std::map<int32_t, RoundFacts> rounds;
  std::map<std::string, SiteFacts> sites;
  std::vector<std::string> incidents;
  std::vector<std::string> exports;
  std::vector<std::string> discrepancies;
  int64_t entries = 0;
  int64_t first_seq = 0;
  int64_t last_seq = 0;
};

void AddSite(RunFacts& facts, int32_t round, const std::string& site) {
  if (site.empty()) return;
  SiteFacts& site_facts = facts.sites[site];
  if (round < 0) return;
  site_facts.rounds.insert(round);
  RoundFacts& round_facts = facts.rounds[round];
  for (const auto& known : round_facts.sites) {
    if (known == site) return;
  }
  round_facts.sites.push_back(site);
}

std::string RoundPrefix(int32_t round) {
  return round >= 0 ? absl::StrCat("Round ", round, ", ") : "";
}

void ReadEntry(const v1::AuditEntry& entry, RunFacts& facts,
               std::set<std::pair<int32_t, std::string>>& logged_departures) {
  const Json detail = DetailOf(entry);
  const std::string& action = entry.action();
  const int32_t round = entry.round();
  const std::string when = ReadableTime(entry.time());
  if (action == "run.started") {
    if (facts.started == nullptr) facts.started = &entry;
  } else if (action == "run.finished") {
    facts.finished = &entry;
    const std::string state = StringField(detail, "state");
    const std::string error = StringField(detail, "error");
    if (state != "done" || !error.empty()) {
      facts.incidents.push_back(
          absl::StrCat(when, ": the run ended ", state.empty() ? "without a state" : state,
                       error.empty() ? "" : ": ", OneLine(error), " (", SeqRef(entry), ")"));
    }
  } else if (action == "round.opened") {
    for (const auto& site : StringsField(detail, "sites")) AddSite(facts, round, site);
    if (round >= 0) {
      facts.rounds[round].logged_secure_aggregation = BoolField(detail, "secure_aggregation");
    }
  } else if (action == "update.received") {
    const std::string site = StringField(detail, "site");
    AddSite(facts, round, site);
    if (!site.empty()) {
      facts.sites[site].updates += 1;
      facts.sites[site].examples += IntField(detail, "examples");
    }
  } else if (action == "site.dropped" || action == "site.refused_task") {
    const std::string site = StringField(detail, "site");
    const bool dropped = action == "site.dropped";
    AddSite(facts, round, site);
    if (!site.empty()) {
      (dropped ? facts.sites[site].dropped : facts.sites[site].refused) += 1;
    }
    if (round >= 0 && !site.empty()) facts.rounds[round].left.insert(site);
    logged_departures.insert({round, site});
    facts.incidents.push_back(absl::StrCat(
        RoundPrefix(round), when, ": site ", Code(site),
        dropped ? " was dropped: " : " refused the task: ", Reason(StringField(detail, "reason")),
        " (", SeqRef(entry), ")"));
  } else if (action == "round.aggregated") {
    for (const auto& site : StringsField(detail, "sites")) AddSite(facts, round, site);
    if (round >= 0) {
      facts.rounds[round].aggregated = &entry;
      facts.rounds[round].logged_model_sha256 = StringField(detail, "model_sha256");
    }
  } else if (action == "round.evaluated") {
    if (round >= 0) {
      RoundFacts& round_facts = facts.rounds[round];
      round_facts.evaluated = &entry;
      auto metrics = detail.find("metrics");
      if (metrics != detail.end() && metrics->is_object()) round_facts.logged_metrics = *metrics;
    }
  } else if (action == "model.exported") {
    const int64_t exported_round =
        detail.contains("round") ? IntField(detail, "round") : static_cast<int64_t>(round);
    facts.exports.push_back(absl::StrCat(
        when, ": the round ", exported_round, " model was exported by ", Code(entry.actor()),
        ", SHA-256 ", Code(StringField(detail, "model_sha256")), " (", SeqRef(entry), ")"));
  } else if (action == "site.refused") {
    facts.incidents.push_back(absl::StrCat(
        when, ": site ", Code(StringField(detail, "site")), " was refused at connection: ",
        Reason(StringField(detail, "reason")), " (", SeqRef(entry), ")"));
  } else if (action == "site.revoked") {
    facts.incidents.push_back(absl::StrCat(
        when, ": site ", Code(StringField(detail, "site")), " was revoked by ", Code(entry.actor()),
        ": ", Reason(StringField(detail, "reason")), " (", SeqRef(entry), ")"));
  } else if (action == "auth.denied") {
    facts.incidents.push_back(absl::StrCat(
        when, ": ", Code(entry.actor()), " was denied ", Code(StringField(detail, "call")), ": ",
        Reason(StringField(detail, "reason")), " (", SeqRef(entry), ")"));
  }
}

RunFacts Gather(const v1::RunStatus& run, const std::vector<v1::AuditEntry>& entries) {
  RunFacts facts;
  std::set<std::pair<int32_t, std::string>> logged_departures;
  for (const auto& entry : entries) {
    if (entry.run_id() != run.run_id()) continue;
    if (facts.entries == 0) facts.first_seq = entry.seq();
    facts.last_seq = entry.seq();
    facts.entries += 1;
    ReadEntry(entry, facts, logged_departures);
  }

  // The run status may know of departures the log does not (an older
  // coordinator); list them too, marked as coming from the status.
  for (const auto& round : run.rounds()) {
    RoundFacts& round_facts = facts.rounds[round.round()];
    round_facts.status = &round;
    for (const auto& site : round.sites()) {
      AddSite(facts, round.round(), site.site());
      if (!IsDroppedState(site.state())) continue;
      round_facts.left.insert(site.site());
      if (logged_departures.count({round.round(), site.site()}) > 0) continue;
      (site.state() == "dropped" ? facts.sites[site.site()].dropped
                                 : facts.sites[site.site()].refused) += 1;
      facts.incidents.push_back(absl::StrCat(RoundPrefix(round.round()), "site ", Code(site.site()),
                                             " ", site.state(), ": ", Reason(site.detail()),
                                             " (run status only; not in the audit log)"));
    }
  }

  // Where the status and the log disagree, an auditor has to know.
  const std::string status_spec_sha256 = HexEncode(run.spec_sha256());
  if (facts.started != nullptr) {
    const Json detail = DetailOf(*facts.started);
    const std::string logged_spec_sha256 = StringField(detail, "spec_sha256");
    if (!logged_spec_sha256.empty() && !status_spec_sha256.empty() &&
        logged_spec_sha256 != status_spec_sha256) {
      facts.discrepancies.push_back(absl::StrCat(
          "The run status gives spec SHA-256 ", Code(status_spec_sha256), " but the log recorded ",
          Code(logged_spec_sha256), " (", SeqRef(*facts.started), ")"));
    }
    const int logged_secagg = BoolField(detail, "secure_aggregation");
    if (logged_secagg >= 0 && (logged_secagg == 1) != run.spec().secure_aggregation()) {
      facts.discrepancies.push_back(
          absl::StrCat("The run status says secure aggregation is ",
                       run.spec().secure_aggregation() ? "on" : "off", " but the log recorded it ",
                       logged_secagg == 1 ? "on" : "off", " (", SeqRef(*facts.started), ")"));
    }
  }
  for (const auto& [number, round] : facts.rounds) {
    if (round.status != nullptr && round.aggregated != nullptr) {
      const std::string status_sha256 = HexEncode(round.status->model_sha256());
      if (!status_sha256.empty() && !round.logged_model_sha256.empty() &&
          status_sha256 != round.logged_model_sha256) {
        facts.discrepancies.push_back(
            absl::StrCat("Round ", number, ": the run status gives model SHA-256 ",
                         Code(status_sha256), " but the log recorded ",
                         Code(round.logged_model_sha256), " (", SeqRef(*round.aggregated), ")"));
      }
    }
    if (round.logged_secure_aggregation >= 0 &&
        (round.logged_secure_aggregation == 1) != run.spec().secure_aggregation()) {
      facts.discrepancies.push_back(absl::StrCat(
          "Round ", number, " was opened with secure aggregation ",
          round.logged_secure_aggregation == 1 ? "on" : "off",
          " although the specification has it ", run.spec().secure_aggregation() ? "on" : "off"));
    }
  }
  return facts;
}

// ---- Sections -----------------------------------------------------------------

void RenderSummary(std::string& out, const v1::RunStatus& run, const RunFacts& facts) {
  absl::StrAppend(&out, "# Audit report: federated training run ", run.run_id(), "\n\n");
  absl::StrAppend(&out, "- **Run:** ", run.run_id(), "\n");
  absl::StrAppend(&out, "- **State:** ", run.state().empty() ? "unknown" : run.state(), ", ",
                  run.completed_rounds(), " of ", run.spec().rounds(), " rounds completed\n");
  if (facts.started != nullptr) {
    absl::StrAppend(&out, "- **Started by:** ", Code(facts.started->actor()), " at ",
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
  absl::StrAppend(&out, "- **Spec SHA-256:** ", Code(HexEncode(run.spec_sha256())), "\n");
  absl::StrAppend(&out, "- **Model:** ", Code(spec.model()), ", ", spec.num_classes(),
                  " classes\n");
  absl::StrAppend(&out, "- **Aggregation strategy:** ", Code(spec.strategy()), "\n");
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
  absl::StrAppend(&out, "- **Differential privacy:** ",
                  spec.differential_privacy() ? "on (requested in the specification)" : "off",
                  "\n");
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
    absl::StrAppend(&out, "| ", Code(site), " | ",
                    rounds.empty() ? "-" : absl::StrJoin(rounds, ", "), " | ", site_facts.updates,
                    " | ", site_facts.examples, " | ", site_facts.dropped, " | ",
                    site_facts.refused, " |\n");
  }
}

std::string MetricCell(const v1::Metrics* status_metrics, const Json& logged, const char* key,
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
    auto metric = [&](const char* key, double (v1::Metrics::*getter)() const) {
      return measured ? MetricCell(status_metrics, round.logged_metrics, key, getter)
                      : std::string("-");
    };
    std::string model_sha256 =
        round.status != nullptr ? HexEncode(round.status->model_sha256()) : "";
    if (model_sha256.empty()) model_sha256 = round.logged_model_sha256;
    absl::StrAppend(
        &out, "| ", number, " | ", Cell(state), " | ", sites, " | ",
        metric("auc", &v1::Metrics::auc), " | ", metric("accuracy", &v1::Metrics::accuracy), " | ",
        metric("sensitivity", &v1::Metrics::sensitivity), " | ",
        metric("specificity", &v1::Metrics::specificity), " | ", Code(model_sha256), " |\n");
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

// ---- The command -------------------------------------------------------------

// Written next to `path` and renamed, so a failure leaves no half report.
absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream file(temp, std::ios::trunc | std::ios::binary);
    if (!file) return absl::PermissionDeniedError(absl::StrCat("cannot write ", temp));
    file << text;
    file.flush();
    if (!file) {
      std::remove(temp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", temp));
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", temp, " to ", path));
  }
  return absl::OkStatus();
}

int ReportRun(const GlobalOptions& global, int64_t run_id, const std::string& out_path) {
  auto admin = ConnectToCoordinator(global);
  if (!admin.ok()) return ReportError(admin.status());
  auto run = (*admin)->GetRun(run_id);
  if (!run.ok()) return ReportError(run.status());
  v1::AuditQuery query;
  query.set_run_id(run_id);
  std::vector<v1::AuditEntry> entries;
  absl::Status listed = (*admin)->ListAuditEntries(
      query, [&](const v1::AuditEntry& entry) { entries.push_back(entry); });
  if (!listed.ok()) return ReportError(listed);

  const std::string markdown = RenderRunReport(*run, entries);
  if (out_path.empty()) {
    if (global.json) {
      PrintJsonLine({{"run_id", run_id}, {"entries", entries.size()}, {"markdown", markdown}});
    } else {
      std::cout << markdown << std::flush;
    }
    return kExitOk;
  }
  if (absl::Status status = WriteTextFile(out_path, markdown); !status.ok()) {
    return ReportError(status);
  }
  if (global.json) {
    PrintJsonLine({{"run_id", run_id}, {"entries", entries.size()}, {"out", out_path}});
  } else {
    std::cout << "wrote the report on run " << run_id << " (" << entries.size()
              << " audit entries) to " << out_path << std::endl;
  }
  return kExitOk;
}

}  // namespace

void AddRunReportCommand(CLI::App* run, GlobalOptions& global, CommandResult& result) {
  auto run_id = std::make_shared<int64_t>(0);
  auto out_path = std::make_shared<std::string>();
  CLI::App* report = run->add_subcommand(
      "report",
      "Write a Markdown report on a run for an ethics board: who started it, the specification "
      "and privacy settings, sites, per-round metrics and model hashes, failures and drops, "
      "from the run status and the audit log");
  report->add_option("RUN", *run_id, "run id")->required()->check(CLI::PositiveNumber);
  report->add_option("--out", *out_path, "write the Markdown to this file instead of stdout");
  report->add_flag("--json", global.json,
                   "print one JSON object as the last line of stdout (with the Markdown in "
                   "\"markdown\" when there is no --out)");
  report->callback([&global, &result, run_id, out_path] {
    RunCommand(result, [&] { return ReportRun(global, *run_id, *out_path); });
  });
}

std::string RenderRunReport(const v1::RunStatus& run, const std::vector<v1::AuditEntry>& entries) {
  const RunFacts facts = Gather(run, entries);
  std::string out;
  RenderSummary(out, run, facts);
  RenderSpec(out, run);
  RenderPrivacy(out, run.spec());
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

std::string CsvField(absl::string_view value) {
  const bool needs_quotes = value.find_first_of(",\"\r\n") != absl::string_view::npos ||
                            (!value.empty() && (value.front() == ' ' || value.back() == ' '));
  if (!needs_quotes) return std::string(value);
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

std::string SummarizeDetail(const std::string& detail_json, size_t max_chars) {
  std::string summary;
  Json json = Json::parse(detail_json, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    summary = OneLine(detail_json);
  } else {
    std::vector<std::string> pairs;
    for (const auto& [key, value] : json.items()) {
      std::string text;
      if (value.is_string()) {
        text = value.get<std::string>();
        if (text.empty() || text.find_first_of(" \t\r\n") != std::string::npos) {
          text = DumpJson(value);
        }
      } else {
        text = DumpJson(value);
      }
      pairs.push_back(absl::StrCat(key, "=", OneLine(text)));
    }
    summary = absl::StrJoin(pairs, " ");
  }
  if (summary.size() <= max_chars) return summary;
  constexpr absl::string_view kEllipsis = "...";
  if (max_chars <= kEllipsis.size()) return std::string(kEllipsis.substr(0, max_chars));
  size_t cut = max_chars - kEllipsis.size();
  // Never split a UTF-8 sequence.
  while (cut > 0 && (static_cast<unsigned char>(summary[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(summary.substr(0, cut), kEllipsis);
}

absl::StatusOr<absl::Time> ParseSinceTime(const std::string& text) {
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &time, &error)) return time;
  if (absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &time, &error)) return time;
  return absl::InvalidArgumentError(
      absl::StrCat("--since '", text,
                   "' is neither an RFC 3339 time (2026-11-28T10:00:00Z) nor a date (2026-11-28)"));
}

}  // namespace fedmi::cli
