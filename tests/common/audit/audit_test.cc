#include "common/audit/audit.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/provision/project_ca.h"
#include "tests/test_util.h"

namespace fedmi::audit {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kLogSize = 10;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

// A project CA with its coordinator's audit signer, and a second, unrelated
// project whose audit signer plays the forger.
class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, ProjectCa::Create(dir_.Join("pki"), "t"));
    ASSERT_OK_AND_ASSIGN(audit_signer_,
                         ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(signer_,
                         AuditSigner::Create(audit_signer_.key_pem, audit_signer_.cert_pem));
    ASSERT_OK_AND_ASSIGN(other_ca_, ProjectCa::Create(dir_.Join("other-pki"), "other"));
    ASSERT_OK_AND_ASSIGN(IssuedParty other_signer,
                         other_ca_->Issue("coordinator-audit", PartyRole::kAuditSigner, {}));
    ASSERT_OK_AND_ASSIGN(forger_, AuditSigner::Create(other_signer.key_pem, other_signer.cert_pem));
  }

  // Entry i of a run: update.received from alternating sites, one per round.
  static v1::AuditEntry Draft(int i) {
    v1::AuditEntry draft;
    draft.set_time(
        audit::FormatTime(absl::FromUnixSeconds(1795908799) + absl::Milliseconds(37 * i)));
    const std::string site = absl::StrCat("site-", 1 + i % 3);
    draft.set_actor(site);
    draft.set_action(kUpdateReceivedAction);
    draft.set_run_id(1);
    draft.set_round(i / 3);
    draft.set_detail_json(
        UpdateReceivedDetail(site, 1000 + i, HexEncode(Sha256::Digest(site)), 50 + i));
    return draft;
  }

  // Seals drafts 0..n-1 into a chain with `signer`.
  static std::vector<v1::AuditEntry> BuildLog(const AuditSigner& signer, int n) {
    std::vector<v1::AuditEntry> entries;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<v1::AuditEntry> entry =
          signer.Seal(Draft(i), entries.empty() ? nullptr : &entries.back());
      EXPECT_THAT(entry, IsOk());
      if (!entry.ok()) break;
      entries.push_back(*std::move(entry));
    }
    return entries;
  }

  // Re-seals entries[from..] with `signer`, chained onto entries[from - 1].
  static void Reseal(const AuditSigner& signer, std::vector<v1::AuditEntry>* entries, size_t from) {
    for (size_t i = from; i < entries->size(); ++i) {
      absl::StatusOr<v1::AuditEntry> entry =
          signer.Seal((*entries)[i], i == 0 ? nullptr : &(*entries)[i - 1]);
      ASSERT_THAT(entry, IsOk());
      (*entries)[i] = *std::move(entry);
    }
  }

  void BuildSignedLog() {
    entries_ = BuildLog(*signer_, kLogSize);
    ASSERT_EQ(entries_.size(), static_cast<size_t>(kLogSize));
    ASSERT_OK_AND_ASSIGN(head_, signer_->SignHead(entries_.back()));
  }

  absl::StatusOr<VerifyReport> Verify(const std::vector<v1::AuditEntry>& entries) const {
    return VerifyLog(entries, head_, audit_signer_.cert_pem, ca_->ca_cert_pem());
  }

  // The receipt the coordinator returns for an update.received entry.
  v1::UploadReceipt ReceiptFor(const v1::AuditEntry& entry) const {
    v1::UploadReceipt receipt;
    receipt.set_run_id(entry.run_id());
    receipt.set_round(entry.round());
    receipt.set_site(entry.actor());
    receipt.set_sha256(Sha256::Digest(entry.actor()));
    const int i = static_cast<int>(entry.seq()) - 1;
    receipt.set_bytes_received(1000 + i);
    receipt.set_examples(50 + i);
    receipt.set_audit_seq(entry.seq());
    receipt.set_audit_hash(entry.hash());
    receipt.set_time(entry.time());
    EXPECT_THAT(signer_->SignReceipt(&receipt), IsOk());
    return receipt;
  }

  ScratchDir dir_;
  std::unique_ptr<ProjectCa> ca_;
  IssuedParty audit_signer_;
  std::unique_ptr<AuditSigner> signer_;
  std::unique_ptr<ProjectCa> other_ca_;
  std::unique_ptr<AuditSigner> forger_;
  std::vector<v1::AuditEntry> entries_;
  v1::AuditHead head_;
};

TEST_F(AuditTest, SealChainsEntriesAndKeepsTheDraft) {
  ASSERT_OK_AND_ASSIGN(v1::AuditEntry first, signer_->Seal(Draft(0), nullptr));
  EXPECT_EQ(first.seq(), 1);
  EXPECT_EQ(first.prev_hash(), kGenesisHash);
  EXPECT_EQ(first.hash(), EntryHash(first));
  EXPECT_EQ(first.hash().size(), 64u);
  EXPECT_THAT(VerifyWithCertificatePem(audit_signer_.cert_pem, CanonicalEntryBytes(first),
                                       first.signature()),
              IsOk());

  v1::AuditEntry draft = Draft(1);
  draft.set_seq(99);  // ignored: Seal numbers entries itself
  draft.set_prev_hash("junk");
  ASSERT_OK_AND_ASSIGN(v1::AuditEntry second, signer_->Seal(draft, &first));
  EXPECT_EQ(second.seq(), 2);
  EXPECT_EQ(second.prev_hash(), first.hash());
  EXPECT_EQ(second.time(), draft.time());
  EXPECT_EQ(second.actor(), draft.actor());
  EXPECT_EQ(second.action(), draft.action());
  EXPECT_EQ(second.run_id(), draft.run_id());
  EXPECT_EQ(second.round(), draft.round());
  EXPECT_EQ(second.detail_json(), draft.detail_json());

  v1::AuditEntry unhashed = first;
  unhashed.clear_hash();
  EXPECT_THAT(signer_->Seal(Draft(1), &unhashed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("entry 1")));
}

TEST_F(AuditTest, CreateRefusesAKeyOfAnotherCertificate) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, {}));
  EXPECT_THAT(AuditSigner::Create(site.key_pem, audit_signer_.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not belong")));
  EXPECT_THAT(AuditSigner::Create("not a key", audit_signer_.cert_pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot sign")));
  EXPECT_EQ(signer_->certificate_pem(), audit_signer_.cert_pem);
}

TEST_F(AuditTest, CanonicalBytesAreUnambiguous) {
  v1::AuditEntry a = Draft(0);
  a.set_actor("ab");
  a.set_action("c");
  v1::AuditEntry b = Draft(0);
  b.set_actor("a");
  b.set_action("bc");
  EXPECT_NE(CanonicalEntryBytes(a), CanonicalEntryBytes(b));
  EXPECT_NE(EntryHash(a), EntryHash(b));
  EXPECT_THAT(CanonicalEntryBytes(a), HasSubstr("fedmi/audit/entry/v1"));

  // hash and signature are not part of the encoding.
  v1::AuditEntry sealed = a;
  sealed.set_hash("x");
  sealed.set_signature("y");
  EXPECT_EQ(CanonicalEntryBytes(a), CanonicalEntryBytes(sealed));

  EXPECT_NE(HeadBytes(1, "ab"), HeadBytes(2, "ab"));
  EXPECT_THAT(HeadBytes(1, "ab"), HasSubstr("fedmi/audit/head/v1"));
}

// Pins the signed encodings byte for byte: every log and receipt already
// written must keep verifying, so a refactor that changes them fails here.
// The digests were also reproduced independently (Python's struct and
// hashlib, from the layout in audit.h), so an auditor's own verifier can
// check against them.
TEST_F(AuditTest, CanonicalEncodingsAreStable) {
  v1::AuditEntry entry;
  entry.set_seq(7);
  entry.set_time("2026-01-02T03:04:05.000006Z");
  entry.set_actor("coordinator");
  entry.set_action("round.committed");
  entry.set_run_id(3);
  entry.set_round(-1);
  entry.set_detail_json(R"({"k":1})");
  entry.set_prev_hash(std::string(64, 'a'));
  EXPECT_EQ(HexEncode(Sha256::Digest(CanonicalEntryBytes(entry))),
            "8c274efff367dc28f113c0753c403d9577153444ddb1ad97657502b3fe8b0cf0");

  v1::UploadReceipt receipt;
  receipt.set_run_id(3);
  receipt.set_round(2);
  receipt.set_site("site-1");
  receipt.set_sha256(std::string(64, 'b'));
  receipt.set_bytes_received(uint64_t{1} << 40);
  receipt.set_examples(512);
  receipt.set_audit_seq(9);
  receipt.set_audit_hash(std::string(64, 'c'));
  receipt.set_time("2026-01-02T03:04:05Z");
  EXPECT_EQ(HexEncode(Sha256::Digest(ReceiptBytes(receipt))),
            "80f94a167c1b2b34c5edd2a36715b61d4731c870e5893832d0e2e8b234afd45a");

  EXPECT_EQ(HexEncode(Sha256::Digest(HeadBytes(-2, "ab"))),
            "cbbb8c4c5a4162bf22ee1589a32c6eff9b674d03c9d178eaca985fb2296d8612");
}

TEST_F(AuditTest, SignedLogVerifies) {
  BuildSignedLog();
  ASSERT_OK_AND_ASSIGN(VerifyReport report, Verify(entries_));
  EXPECT_EQ(report.entries, kLogSize);
  EXPECT_EQ(report.first_seq, 1);
  EXPECT_EQ(report.last_seq, kLogSize);
}

TEST_F(AuditTest, ChangedFieldIsABadHash) {
  BuildSignedLog();
  const std::vector<std::pair<std::string, std::function<void(v1::AuditEntry*)>>> tampers = {
      {"actor", [](v1::AuditEntry* e) { e->set_actor("site-9"); }},
      {"detail",
       [](v1::AuditEntry* e) {
         e->set_detail_json(UpdateReceivedDetail("site-2", 1, std::string(64, 'a'), 1));
       }},
      {"time", [](v1::AuditEntry* e) { e->set_time("2026-11-28T23:33:20.000000Z"); }},
      {"round", [](v1::AuditEntry* e) { e->set_round(e->round() + 1); }},
  };
  for (const auto& [field, tamper] : tampers) {
    SCOPED_TRACE(field);
    std::vector<v1::AuditEntry> entries = entries_;
    tamper(&entries[4]);
    EXPECT_THAT(Verify(entries),
                StatusIs(absl::StatusCode::kDataLoss, StartsWith("entry 5: bad hash: stored ")));
  }
}

TEST_F(AuditTest, RecomputedHashIsABadSignature) {
  BuildSignedLog();
  std::vector<v1::AuditEntry> entries = entries_;
  entries[4].set_actor("site-9");
  entries[4].set_hash(EntryHash(entries[4]));
  EXPECT_THAT(Verify(entries),
              StatusIs(absl::StatusCode::kDataLoss, StartsWith("entry 5: bad signature")));
}

TEST_F(AuditTest, DeletedEntryIsAGap) {
  BuildSignedLog();
  std::vector<v1::AuditEntry> entries = entries_;
  entries.erase(entries.begin() + 4);
  EXPECT_THAT(Verify(entries),
              StatusIs(absl::StatusCode::kDataLoss,
                       "gap in sequence: entry 6 follows entry 4 (entry 5 is missing)"));

  entries.erase(entries.begin() + 4);  // entry 6 too
  EXPECT_THAT(Verify(entries),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("(entries 5 to 6 are missing)")));
}

TEST_F(AuditTest, DeletedFirstEntryIsNamed) {
  BuildSignedLog();
  std::vector<v1::AuditEntry> entries = entries_;
  entries.erase(entries.begin());
  EXPECT_THAT(Verify(entries),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("the log starts at entry 2")));
}

TEST_F(AuditTest, DeletedTailIsDetectedByTheHead) {
  BuildSignedLog();
  std::vector<v1::AuditEntry> entries = entries_;
  entries.resize(kLogSize - 2);
  EXPECT_THAT(Verify(entries),
              StatusIs(absl::StatusCode::kDataLoss,
                       "entries after 8 are missing: the signed head names entry 10"));
}

TEST_F(AuditTest, ForgedEntryIsABadSignature) {
  BuildSignedLog();
  // The forger inserts an entry after entry 5, chains and hashes it
  // properly, and re-seals everything after it: only the key is wrong.
  std::vector<v1::AuditEntry> entries = entries_;
  v1::AuditEntry forged = Draft(5);
  forged.set_actor("site-9");
  entries.insert(entries.begin() + 5, forged);
  Reseal(*forger_, &entries, 5);
  ASSERT_EQ(entries[5].seq(), 6);
  ASSERT_EQ(entries[5].prev_hash(), entries[4].hash());
  ASSERT_EQ(entries[5].hash(), EntryHash(entries[5]));
  EXPECT_THAT(Verify(entries), StatusIs(absl::StatusCode::kDataLoss, "entry 6: bad signature"));

  // Inserted alone, it is still the first problem.
  entries = entries_;
  ASSERT_OK_AND_ASSIGN(v1::AuditEntry lone, forger_->Seal(forged, &entries[4]));
  entries.insert(entries.begin() + 5, lone);
  EXPECT_THAT(Verify(entries), StatusIs(absl::StatusCode::kDataLoss, "entry 6: bad signature"));
}

TEST_F(AuditTest, ReorderedEntriesAreNamed) {
  BuildSignedLog();
  std::vector<v1::AuditEntry> swapped = entries_;
  std::swap(swapped[3], swapped[4]);
  EXPECT_THAT(Verify(swapped),
              StatusIs(absl::StatusCode::kDataLoss, "entry 4 out of order: it follows entry 5"));

  // Entry 2 moved to after entry 7.
  std::vector<v1::AuditEntry> moved = entries_;
  v1::AuditEntry second = moved[1];
  moved.erase(moved.begin() + 1);
  moved.insert(moved.begin() + 6, second);
  EXPECT_THAT(Verify(moved),
              StatusIs(absl::StatusCode::kDataLoss, "entry 2 out of order: it follows entry 7"));

  std::vector<v1::AuditEntry> repeated = entries_;
  repeated.insert(repeated.begin() + 3, repeated[2]);
  EXPECT_THAT(Verify(repeated), StatusIs(absl::StatusCode::kDataLoss, "entry 3 is repeated"));
}

TEST_F(AuditTest, BrokenChainIsNamed) {
  BuildSignedLog();
  // Entry 6 re-sealed by the real key onto a different entry 5: its own
  // hash and signature are fine, only the link is wrong.
  std::vector<v1::AuditEntry> entries = entries_;
  v1::AuditEntry other_fifth = entries[4];
  other_fifth.set_hash(std::string(64, '1'));
  ASSERT_OK_AND_ASSIGN(entries[5], signer_->Seal(entries[5], &other_fifth));
  EXPECT_THAT(Verify(entries),
              StatusIs(absl::StatusCode::kDataLoss,
                       "entry 6: broken chain: prev_hash 11111111... is not the hash of entry 5"));
}

TEST_F(AuditTest, LogResignedByAnotherProjectIsRefused) {
  std::vector<v1::AuditEntry> entries = BuildLog(*forger_, kLogSize);
  ASSERT_OK_AND_ASSIGN(v1::AuditHead head, forger_->SignHead(entries.back()));
  EXPECT_THAT(VerifyLog(entries, head, forger_->certificate_pem(), ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("the log's signer certificate is not issued by the project CA")));
  // Against its own CA the same log is fine: the refusal is about the CA.
  EXPECT_THAT(VerifyLog(entries, head, forger_->certificate_pem(), other_ca_->ca_cert_pem()),
              IsOk());
}

TEST_F(AuditTest, SiteCertificateIsRefusedAsSigner) {
  ASSERT_OK_AND_ASSIGN(IssuedParty site, ca_->Issue("site-1", PartyRole::kSite, {}));
  ASSERT_OK_AND_ASSIGN(auto site_signer, AuditSigner::Create(site.key_pem, site.cert_pem));
  std::vector<v1::AuditEntry> entries = BuildLog(*site_signer, kLogSize);
  ASSERT_OK_AND_ASSIGN(v1::AuditHead head, site_signer->SignHead(entries.back()));
  EXPECT_THAT(VerifyLog(entries, head, site.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("has role 'site'")));
  EXPECT_THAT(VerifySigner(audit_signer_.cert_pem, ca_->ca_cert_pem()), IsOk());
  EXPECT_THAT(VerifySigner("garbage", ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("cannot be read")));
  EXPECT_THAT(VerifySigner(audit_signer_.cert_pem, "garbage"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("project CA")));
}

TEST_F(AuditTest, HeadMustBeSignedAndMatch) {
  BuildSignedLog();
  v1::AuditHead unsigned_head = head_;
  unsigned_head.clear_signature();
  EXPECT_THAT(
      VerifyLog(entries_, unsigned_head, audit_signer_.cert_pem, ca_->ca_cert_pem()),
      StatusIs(absl::StatusCode::kDataLoss, "the log's head is not signed by the coordinator"));

  ASSERT_OK_AND_ASSIGN(v1::AuditHead forged_head, forger_->SignHead(entries_.back()));
  EXPECT_THAT(
      VerifyLog(entries_, forged_head, audit_signer_.cert_pem, ca_->ca_cert_pem()),
      StatusIs(absl::StatusCode::kDataLoss, "the log's head is not signed by the coordinator"));

  // Entries after the head are not protected against deletion.
  ASSERT_OK_AND_ASSIGN(v1::AuditHead old_head, signer_->SignHead(entries_[7]));
  EXPECT_THAT(VerifyLog(entries_, old_head, audit_signer_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 9: after the signed head")));
}

TEST_F(AuditTest, EmptyAndUnsignedLogsFail) {
  EXPECT_THAT(VerifyLog({}, v1::AuditHead(), audit_signer_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kDataLoss, "the log is empty"));

  std::vector<v1::AuditEntry> entries;
  for (int i = 0; i < 3; ++i) {
    entries.push_back(SealUnsigned(Draft(i), entries.empty() ? nullptr : &entries.back()));
  }
  EXPECT_EQ(entries[2].seq(), 3);
  EXPECT_EQ(entries[2].prev_hash(), entries[1].hash());
  EXPECT_EQ(entries[2].hash(), EntryHash(entries[2]));
  EXPECT_TRUE(entries[2].signature().empty());
  EXPECT_THAT(VerifyLog(entries, v1::AuditHead(), audit_signer_.cert_pem, ca_->ca_cert_pem()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("entry 1: bad signature")));
}

TEST_F(AuditTest, ExportRoundTrips) {
  BuildSignedLog();
  ExportedLog log;
  log.signer_certificate_pem = audit_signer_.cert_pem;
  log.head = head_;
  log.entries = entries_;
  log.exported_at = "2026-11-29T00:00:00.000000Z";
  const std::string path = dir_.Join("audit.jsonl");
  ASSERT_THAT(WriteExport(path, log), IsOk());

  const std::string text = ReadAll(path);
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kLogSize + 1));
  EXPECT_THAT(lines[0], StartsWith("{\"format\":\"fedmi-audit-v1\",\"signer_certificate\":"));
  EXPECT_EQ(lines[1], EntryToJsonLine(entries_[0]));
  EXPECT_THAT(lines[1], StartsWith("{\"seq\":1,\"time\":\""));
  // The detail is carried as a string, byte for byte.
  EXPECT_THAT(lines[1], HasSubstr("\"detail\":\"{\\\"bytes\\\":1000,"));

  ASSERT_OK_AND_ASSIGN(ExportedLog read, ReadExport(path));
  EXPECT_EQ(read.signer_certificate_pem, log.signer_certificate_pem);
  EXPECT_EQ(read.exported_at, log.exported_at);
  EXPECT_THAT(read.head, EqualsProto(log.head));
  ASSERT_EQ(read.entries.size(), log.entries.size());
  for (size_t i = 0; i < log.entries.size(); ++i) {
    EXPECT_THAT(read.entries[i], EqualsProto(log.entries[i])) << "entry " << i + 1;
  }
  ASSERT_OK_AND_ASSIGN(
      VerifyReport report,
      VerifyLog(read.entries, read.head, read.signer_certificate_pem, ca_->ca_cert_pem()));
  EXPECT_EQ(report.last_seq, kLogSize);

  // Only the export is left: the temporary file was renamed into place.
  int files = 0;
  for (const auto& item : std::filesystem::directory_iterator(dir_.path())) {
    files += item.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1);

  // A second export replaces the first; an empty exported_at becomes now.
  log.exported_at.clear();
  log.entries.resize(3);
  ASSERT_THAT(WriteExport(path, log), IsOk());
  ASSERT_OK_AND_ASSIGN(ExportedLog again, ReadExport(path));
  EXPECT_EQ(again.entries.size(), 3u);
  EXPECT_THAT(ParseTime(again.exported_at), IsOk());
}

TEST_F(AuditTest, MalformedExportLineIsNamed) {
  BuildSignedLog();
  ExportedLog log{audit_signer_.cert_pem, head_, entries_, ""};
  const std::string path = dir_.Join("audit.jsonl");
  ASSERT_THAT(WriteExport(path, log), IsOk());
  std::vector<std::string> lines = absl::StrSplit(ReadAll(path), '\n', absl::SkipEmpty());

  std::vector<std::string> broken = lines;
  broken[6] = "{\"seq\": 6, oops";
  WriteAll(path, absl::StrJoin(broken, "\n"));
  EXPECT_THAT(ReadExport(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 7: not valid JSON")));

  broken = lines;
  broken[3] = "{\"time\":\"x\"}";
  WriteAll(path, absl::StrJoin(broken, "\n"));
  EXPECT_THAT(ReadExport(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("line 4: field 'seq' is missing")));

  broken = lines;
  broken[0] = "{\"format\":\"something-else\"}";
  WriteAll(path, absl::StrJoin(broken, "\n"));
  EXPECT_THAT(ReadExport(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("line 1: not a fedmi audit export")));

  WriteAll(path, "");
  EXPECT_THAT(ReadExport(path), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  EXPECT_THAT(ReadExport(dir_.Join("missing.jsonl")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.jsonl")));
}

TEST_F(AuditTest, GoodReceiptsVerifyAndRoundTripThroughFiles) {
  BuildSignedLog();
  std::vector<v1::UploadReceipt> receipts;
  for (int seq : {2, 5, 9}) receipts.push_back(ReceiptFor(entries_[seq - 1]));
  EXPECT_THAT(VerifyReceipts(receipts, entries_, audit_signer_.cert_pem), IsOk());

  const std::string folder = dir_.Join("receipts");
  std::filesystem::create_directory(folder);
  for (const v1::UploadReceipt& receipt : receipts) {
    WriteAll(folder + "/" + ReceiptFileName(receipt), ReceiptToJson(receipt));
  }
  WriteAll(folder + "/notes.txt", "not a receipt");
  EXPECT_EQ(ReceiptFileName(receipts[1]), "run-1-round-1.json");

  ASSERT_OK_AND_ASSIGN(std::vector<v1::UploadReceipt> read, ReadReceiptsDir(folder));
  ASSERT_EQ(read.size(), 3u);
  // Sorted by file name: run-1-round-0, run-1-round-1, run-1-round-2.
  for (size_t i = 0; i < read.size(); ++i) EXPECT_THAT(read[i], EqualsProto(receipts[i]));
  EXPECT_THAT(VerifyReceipts(read, entries_, audit_signer_.cert_pem), IsOk());

  WriteAll(folder + "/run-1-round-3.json", "{\"run_id\":1}");
  EXPECT_THAT(ReadReceiptsDir(folder),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("run-1-round-3.json': field 'round' is missing")));
  EXPECT_THAT(ReadReceiptsDir(dir_.Join("nowhere")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nowhere")));
}

TEST_F(AuditTest, ReceiptWhoseEntryWasRemovedIsMissing) {
  BuildSignedLog();
  v1::UploadReceipt receipt = ReceiptFor(entries_[4]);
  std::vector<v1::AuditEntry> entries = entries_;
  entries.erase(entries.begin() + 4);
  EXPECT_THAT(
      VerifyReceipts({receipt}, entries, audit_signer_.cert_pem),
      StatusIs(absl::StatusCode::kDataLoss,
               "receipt of site 'site-2' for run 1 round 1 (entry 5): missing from the log"));
}

TEST_F(AuditTest, AlteredReceiptHasABadSignature) {
  BuildSignedLog();
  v1::UploadReceipt receipt = ReceiptFor(entries_[4]);
  receipt.set_examples(receipt.examples() + 1);
  EXPECT_THAT(VerifyReceipts({receipt}, entries_, audit_signer_.cert_pem),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("(entry 5): bad signature")));
}

TEST_F(AuditTest, ReceiptThatDisagreesWithTheLogIsNamed) {
  BuildSignedLog();
  // Signed by the coordinator, but not what the log recorded.
  v1::UploadReceipt receipt = ReceiptFor(entries_[4]);
  receipt.set_sha256(Sha256::Digest("another update"));
  ASSERT_THAT(signer_->SignReceipt(&receipt), IsOk());
  EXPECT_THAT(VerifyReceipts({receipt}, entries_, audit_signer_.cert_pem),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("(entry 5): the log's entry differs (sha256 ")));

  receipt = ReceiptFor(entries_[4]);
  receipt.set_audit_hash(entries_[5].hash());
  ASSERT_THAT(signer_->SignReceipt(&receipt), IsOk());
  EXPECT_THAT(VerifyReceipts({receipt}, entries_, audit_signer_.cert_pem),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("the log's entry differs (hash ")));
}

TEST(AuditFormatTest, TimeRoundTrips) {
  const std::string text = "2026-11-28T23:33:19.123456Z";
  ASSERT_OK_AND_ASSIGN(absl::Time time, ParseTime(text));
  EXPECT_EQ(audit::FormatTime(time), text);
  EXPECT_EQ(absl::ToUnixMicros(time), 1795908799123456);
  // Below a microsecond is truncated; whole seconds keep six digits.
  EXPECT_EQ(audit::FormatTime(time + absl::Nanoseconds(789)), text);
  EXPECT_EQ(audit::FormatTime(absl::FromUnixSeconds(1795908799)), "2026-11-28T23:33:19.000000Z");

  ASSERT_OK_AND_ASSIGN(absl::Time offset, ParseTime("2026-11-29T00:33:19.123456+01:00"));
  EXPECT_EQ(offset, time);
  EXPECT_THAT(ParseTime("yesterday"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'yesterday'")));
}

TEST(AuditFormatTest, UpdateReceivedDetailIsCanonical) {
  EXPECT_EQ(UpdateReceivedDetail("site-2", 1234, "ab12", 56),
            "{\"bytes\":1234,\"examples\":56,\"sha256\":\"ab12\",\"site\":\"site-2\"}");
}

TEST(AuditFormatTest, ReceiptJsonNamesABadField) {
  v1::UploadReceipt receipt;
  receipt.set_run_id(3);
  receipt.set_round(2);
  receipt.set_site("site-1");
  receipt.set_sha256(std::string(32, '\x7f'));
  receipt.set_bytes_received(1ull << 40);
  receipt.set_examples(7);
  receipt.set_audit_seq(12);
  receipt.set_audit_hash(std::string(64, 'c'));
  receipt.set_time("2026-11-28T23:33:19.123456Z");
  receipt.set_signature(std::string("\x30\x45\x00\xff", 4));
  ASSERT_OK_AND_ASSIGN(v1::UploadReceipt back, ReceiptFromJson(ReceiptToJson(receipt)));
  EXPECT_THAT(back, EqualsProto(receipt));
  EXPECT_EQ(ReceiptFileName(receipt), "run-3-round-2.json");

  EXPECT_THAT(ReceiptFromJson("{\"run_id\":1,\"round\":2}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("field 'site'")));
  std::string bad = ReceiptToJson(receipt);
  bad.replace(bad.find("7f7f"), 4, "zz7f");
  EXPECT_THAT(ReceiptFromJson(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("field 'sha256'")));
  EXPECT_THAT(ReceiptFromJson("[1]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
}

}  // namespace
}  // namespace fedmi::audit
