#include "cli/run_facts.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "cli/command_support.h"
#include "common/audit/audit_actions.h"
#include "common/base/names.h"
#include "common/crypto/sha256.h"

namespace fedmi::cli {
namespace {

using audit::Action;

// A reason for a bullet; "no reason given" when empty.
std::string Reason(const std::string& reason) {
  return reason.empty() ? "no reason given" : OneLine(reason);
}

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

// A site left a round, as the log or only the run status knows.
void CountDeparture(RunFacts& facts, const std::string& site, ParticipationState state) {
  SiteFacts& site_facts = facts.sites[site];
  (state == ParticipationState::kDropped ? site_facts.dropped : site_facts.refused) += 1;
}

void ReadEntry(const v1::AuditEntry& entry, RunFacts& facts,
               std::set<std::pair<int32_t, std::string>>& logged_departures) {
  const std::optional<Action> action = audit::ParseAction(entry.action());
  if (!action.has_value()) return;  // an action this fedmi does not know
  const DetailJson detail = DetailOf(entry);
  const int32_t round = entry.round();
  const std::string when = ReadableTime(entry.time());
  switch (*action) {
    case Action::kRunStarted:
      if (facts.started == nullptr) facts.started = &entry;
      break;
    case Action::kRunFinished: {
      facts.finished = &entry;
      const std::string state = StringField(detail, "state");
      const std::string error = StringField(detail, "error");
      if (ParseRunState(state) != RunState::kDone || !error.empty()) {
        facts.incidents.push_back(
            absl::StrCat(when, ": the run ended ", state.empty() ? "without a state" : state,
                         error.empty() ? "" : ": ", OneLine(error), " (", SeqRef(entry), ")"));
      }
      break;
    }
    case Action::kRoundOpened:
      for (const auto& site : StringsField(detail, "sites")) AddSite(facts, round, site);
      if (round >= 0) {
        facts.rounds[round].logged_secure_aggregation = BoolField(detail, "secure_aggregation");
      }
      break;
    case Action::kUpdateReceived: {
      const std::string site = StringField(detail, "site");
      AddSite(facts, round, site);
      if (!site.empty()) {
        facts.sites[site].updates += 1;
        facts.sites[site].examples += IntField(detail, "examples");
      }
      break;
    }
    case Action::kSiteDropped:
    case Action::kSiteRefusedTask: {
      const std::string site = StringField(detail, "site");
      const bool dropped = *action == Action::kSiteDropped;
      AddSite(facts, round, site);
      if (!site.empty()) {
        CountDeparture(facts, site,
                       dropped ? ParticipationState::kDropped : ParticipationState::kRefused);
      }
      if (round >= 0 && !site.empty()) facts.rounds[round].left.insert(site);
      logged_departures.insert({round, site});
      facts.incidents.push_back(absl::StrCat(
          RoundPrefix(round), when, ": site ", MarkdownCode(site),
          dropped ? " was dropped: " : " refused the task: ", Reason(StringField(detail, "reason")),
          " (", SeqRef(entry), ")"));
      break;
    }
    case Action::kPrivacySpent:
      if (round >= 0) facts.rounds[round].privacy_spent = &entry;
      break;
    case Action::kRoundAggregated:
      for (const auto& site : StringsField(detail, "sites")) AddSite(facts, round, site);
      if (round >= 0) {
        facts.rounds[round].aggregated = &entry;
        facts.rounds[round].logged_model_sha256 = StringField(detail, "model_sha256");
      }
      break;
    case Action::kRoundEvaluated:
      if (round >= 0) {
        RoundFacts& round_facts = facts.rounds[round];
        round_facts.evaluated = &entry;
        auto metrics = detail.find("metrics");
        if (metrics != detail.end() && metrics->is_object()) round_facts.logged_metrics = *metrics;
      }
      break;
    case Action::kModelExported: {
      const int64_t exported_round =
          detail.contains("round") ? IntField(detail, "round") : static_cast<int64_t>(round);
      facts.exports.push_back(absl::StrCat(
          when, ": the round ", exported_round, " model was exported by ",
          MarkdownCode(entry.actor()), ", SHA-256 ",
          MarkdownCode(StringField(detail, "model_sha256")), " (", SeqRef(entry), ")"));
      break;
    }
    case Action::kSiteRefused:
      facts.incidents.push_back(
          absl::StrCat(when, ": site ", MarkdownCode(StringField(detail, "site")),
                       " was refused at connection: ", Reason(StringField(detail, "reason")), " (",
                       SeqRef(entry), ")"));
      break;
    case Action::kSiteRevoked:
      facts.incidents.push_back(
          absl::StrCat(when, ": site ", MarkdownCode(StringField(detail, "site")),
                       " was revoked by ", MarkdownCode(entry.actor()), ": ",
                       Reason(StringField(detail, "reason")), " (", SeqRef(entry), ")"));
      break;
    case Action::kAuthDenied:
      facts.incidents.push_back(
          absl::StrCat(when, ": ", MarkdownCode(entry.actor()), " was denied ",
                       MarkdownCode(StringField(detail, "call")), ": ",
                       Reason(StringField(detail, "reason")), " (", SeqRef(entry), ")"));
      break;
    default:  // coordinator life, connections, refused updates: not about this run's story
      break;
  }
}

}  // namespace

RunFacts GatherRunFacts(const v1::RunStatus& run, const std::vector<v1::AuditEntry>& entries) {
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
      const std::optional<ParticipationState> state = ParseParticipationState(site.state());
      if (!state.has_value() || !HasLeftRound(*state)) continue;
      round_facts.left.insert(site.site());
      if (logged_departures.count({round.round(), site.site()}) > 0) continue;
      CountDeparture(facts, site.site(), *state);
      facts.incidents.push_back(absl::StrCat(
          RoundPrefix(round.round()), "site ", MarkdownCode(site.site()), " ", site.state(), ": ",
          Reason(site.detail()), " (run status only; not in the audit log)"));
    }
  }

  // Where the status and the log disagree, an auditor has to know.
  const std::string status_spec_sha256 = HexEncode(run.spec_sha256());
  if (facts.started != nullptr) {
    const DetailJson detail = DetailOf(*facts.started);
    const std::string logged_spec_sha256 = StringField(detail, "spec_sha256");
    if (!logged_spec_sha256.empty() && !status_spec_sha256.empty() &&
        logged_spec_sha256 != status_spec_sha256) {
      facts.discrepancies.push_back(
          absl::StrCat("The run status gives spec SHA-256 ", MarkdownCode(status_spec_sha256),
                       " but the log recorded ", MarkdownCode(logged_spec_sha256), " (",
                       SeqRef(*facts.started), ")"));
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
        facts.discrepancies.push_back(absl::StrCat(
            "Round ", number, ": the run status gives model SHA-256 ", MarkdownCode(status_sha256),
            " but the log recorded ", MarkdownCode(round.logged_model_sha256), " (",
            SeqRef(*round.aggregated), ")"));
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

std::string MarkdownCode(absl::string_view text) {
  if (text.empty()) return "-";
  return absl::StrCat("`", absl::StrReplaceAll(OneLine(text), {{"`", "'"}}), "`");
}

std::string SeqRef(const v1::AuditEntry& entry) { return absl::StrCat("audit seq ", entry.seq()); }

}  // namespace fedmi::cli
