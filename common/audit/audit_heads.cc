#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/audit/audit.h"
#include "common/audit/audit_json.h"
#include "common/base/status.h"
#include "common/crypto/signing.h"

// The signed heads a site keeps and the check that each is a prefix of an
// exported log (declared in audit.h).

namespace fedmi::audit {
namespace {

// "head seq 41 (received 2026-12-05T10:00:00.000000Z, with train task run 1 round 4)"
std::string Describe(const HeldHead& held) {
  return absl::StrCat("head seq ", held.head.seq(), " (received ", held.received_at,
                      held.via.empty() ? "" : absl::StrCat(", with ", held.via), ")");
}

// "entry 9" or "entries 9..12".
std::string EntryRange(int64_t first, int64_t last) {
  return first == last ? absl::StrCat("entry ", first)
                       : absl::StrCat("entries ", first, "..", last);
}

std::string RewrittenProblem(const HeldHead& held, const v1::AuditEntry& in_log,
                             const HeldHead* last_match) {
  const int64_t first = last_match == nullptr ? 1 : last_match->head.seq() + 1;
  const int64_t seq = held.head.seq();
  const std::string hashes =
      absl::StrCat("the log's entry ", seq, " has hash ", Short(in_log.hash()), ", ",
                   Describe(held), " that the site holds names ", Short(held.head.hash()));
  std::string problem =
      first == seq ? absl::StrCat("entry ", seq, " was rewritten: ", hashes)
                   : absl::StrCat(EntryRange(first, seq), ": at least one was rewritten: ", hashes);
  // The chained hash commits to every earlier entry, so a head that still
  // matches clears everything up to it.
  if (last_match != nullptr) {
    absl::StrAppend(&problem, "; entries up to ", last_match->head.seq(), " match ",
                    Describe(*last_match));
  }
  return problem;
}

}  // namespace

std::string HeldHeadToJson(const HeldHead& held) {
  OrderedJson json;
  json["seq"] = held.head.seq();
  json["hash"] = held.head.hash();
  json["signature"] = absl::Base64Escape(held.head.signature());
  json["received_at"] = held.received_at;
  json["via"] = held.via;
  return DumpJson(json, 2);
}

absl::StatusOr<HeldHead> HeldHeadFromJson(const std::string& json_text) {
  ASSIGN_OR_RETURN(Json json, ParseJsonObject(json_text));
  JsonFields fields(json);
  HeldHead held;
  ASSIGN_OR_RETURN(int64_t seq, fields.Int64("seq"));
  ASSIGN_OR_RETURN(std::string hash, fields.String("hash"));
  ASSIGN_OR_RETURN(std::string signature, fields.Base64("signature"));
  ASSIGN_OR_RETURN(held.received_at, fields.String("received_at"));
  ASSIGN_OR_RETURN(held.via, fields.String("via"));
  held.head.set_seq(seq);
  held.head.set_hash(std::move(hash));
  held.head.set_signature(std::move(signature));
  return held;
}

std::string HeldHeadFileName(const v1::AuditHead& head) {
  return absl::StrFormat("head-%012d-%s.json", head.seq(), head.hash().substr(0, 16));
}

std::string HeldHeadsDir(const std::string& receipts_dir) { return receipts_dir + "/heads"; }

HeadsReport CheckHeldHeads(const std::vector<HeldHead>& heads,
                           const std::vector<v1::AuditEntry>& entries,
                           const std::string& signer_cert_pem) {
  HeadsReport report;
  // Distinct heads in order of seq; the first copy of each names it.
  std::map<std::pair<int64_t, std::string>, const HeldHead*> distinct;
  for (const HeldHead& held : heads) {
    if (!VerifyWithCertificatePem(signer_cert_pem, HeadBytes(held.head.seq(), held.head.hash()),
                                  held.head.signature())
             .ok()) {
      report.problems.push_back(
          absl::StrCat(Describe(held), ": not signed by the log's signer, so it proves nothing"));
      continue;
    }
    distinct.emplace(std::make_pair(held.head.seq(), held.head.hash()), &held);
  }
  report.heads = static_cast<int64_t>(distinct.size());

  std::map<int64_t, const v1::AuditEntry*> by_seq;
  for (const v1::AuditEntry& entry : entries) by_seq.emplace(entry.seq(), &entry);
  const int64_t last_seq = entries.empty() ? 0 : entries.back().seq();
  const HeldHead* last_match = nullptr;
  const HeldHead* previous = nullptr;
  const HeldHead* newest_missing = nullptr;
  bool rewrite_reported = false;
  for (const auto& [key, held] : distinct) {
    report.newest_seq = held->head.seq();
    if (previous != nullptr && previous->head.seq() == held->head.seq()) {
      // Both are signed: the coordinator showed two different logs.
      report.problems.push_back(
          absl::StrCat("the log's signer signed two different heads for entry ", held->head.seq(),
                       ": ", Describe(*previous), " names ", Short(previous->head.hash()), ", ",
                       Describe(*held), " names ", Short(held->head.hash())));
    }
    previous = held;
    auto entry = by_seq.find(held->head.seq());
    if (held->head.seq() > last_seq || entry == by_seq.end()) {
      newest_missing = held;
    } else if (entry->second->hash() == held->head.hash()) {
      last_match = held;
    } else if (!rewrite_reported) {
      // Later mismatches follow from this one: the chain carries it on.
      report.problems.push_back(RewrittenProblem(*held, *entry->second, last_match));
      rewrite_reported = true;
    }
  }
  if (newest_missing != nullptr) {
    const int64_t seq = newest_missing->head.seq();
    report.problems.push_back(
        absl::StrCat(Describe(*newest_missing), ": ", EntryRange(last_seq + 1, seq),
                     seq == last_seq + 1 ? " is" : " are",
                     " missing from the log, which ends at entry ", last_seq));
  }
  return report;
}

}  // namespace fedmi::audit
