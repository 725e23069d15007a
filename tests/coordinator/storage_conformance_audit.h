// The Storage conformance suite, continued: the audit log. Included at the
// end of storage_conformance.h, so every backend that instantiates the suite
// runs these too.
#ifndef FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_AUDIT_H_
#define FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_AUDIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {

inline v1::AuditEntry MakeAuditEntry(int64_t seq, int64_t run_id, const std::string& time) {
  v1::AuditEntry entry;
  entry.set_seq(seq);
  entry.set_time(time);
  entry.set_actor("admin-1");
  entry.set_action("run.started");
  entry.set_run_id(run_id);
  entry.set_round(-1);
  entry.set_detail_json("{\"n\":" + std::to_string(seq) + "}");
  entry.set_prev_hash(HexEncode(Sha256::Digest("entry " + std::to_string(seq - 1))));
  entry.set_hash(HexEncode(Sha256::Digest("entry " + std::to_string(seq))));
  entry.set_signature(std::string("sig\0") + std::to_string(seq));
  return entry;
}

inline StoredAuditHead HeadOf(const v1::AuditEntry& entry) {
  StoredAuditHead head;
  head.head.set_seq(entry.seq());
  head.head.set_hash(entry.hash());
  head.head.set_signature("head-signature");
  head.signer_certificate_pem = "PEM";
  return head;
}

TEST_P(StorageConformanceTest, AuditLogIsEmptyAtFirst) {
  EXPECT_THAT(storage_->LastAuditEntry(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(storage_->GetAuditHead(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(int64_t count, storage_->CountAudit());
  EXPECT_EQ(count, 0);
}

TEST_P(StorageConformanceTest, AuditEntriesRoundTripWithTheirHead) {
  const v1::AuditEntry first = MakeAuditEntry(1, 0, "2026-11-28T10:00:00.000000Z");
  const v1::AuditEntry second = MakeAuditEntry(2, 7, "2026-11-28T11:00:00.000000Z");
  ASSERT_THAT(storage_->AppendAudit(first, HeadOf(first)), IsOk());
  ASSERT_THAT(storage_->AppendAudit(second, HeadOf(second)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> all, storage_->ListAudit({}));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(all[1].SerializeAsString(), second.SerializeAsString()) << "binary signature kept";
  ASSERT_OK_AND_ASSIGN(v1::AuditEntry last, storage_->LastAuditEntry());
  EXPECT_EQ(last.seq(), 2);
  ASSERT_OK_AND_ASSIGN(StoredAuditHead head, storage_->GetAuditHead());
  EXPECT_EQ(head.head.seq(), 2);
  EXPECT_EQ(head.head.hash(), second.hash());
  EXPECT_EQ(head.signer_certificate_pem, "PEM");
  ASSERT_OK_AND_ASSIGN(int64_t count, storage_->CountAudit());
  EXPECT_EQ(count, 2);
}

TEST_P(StorageConformanceTest, AuditAppendNeverOverwritesAnEntry) {
  const v1::AuditEntry first = MakeAuditEntry(1, 0, "2026-11-28T10:00:00.000000Z");
  ASSERT_THAT(storage_->AppendAudit(first, HeadOf(first)), IsOk());
  v1::AuditEntry again = first;
  again.set_actor("mallory");
  EXPECT_THAT(storage_->AppendAudit(again, HeadOf(again)),
              StatusIs(absl::StatusCode::kAlreadyExists, ::testing::HasSubstr("audit entry 1")));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> all, storage_->ListAudit({}));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].actor(), "admin-1");
  // A head that names another entry is refused before anything is stored.
  const v1::AuditEntry second = MakeAuditEntry(2, 0, "2026-11-28T10:00:01.000000Z");
  EXPECT_THAT(storage_->AppendAudit(second, HeadOf(first)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(int64_t count, storage_->CountAudit());
  EXPECT_EQ(count, 1);
}

TEST_P(StorageConformanceTest, ListAuditFiltersByRunSeqAndTime) {
  for (int64_t seq = 1; seq <= 6; ++seq) {
    const v1::AuditEntry entry = MakeAuditEntry(
        seq, seq % 2 == 0 ? 3 : 0, absl::StrCat("2026-11-28T1", seq, ":00:00.000000Z"));
    ASSERT_THAT(storage_->AppendAudit(entry, HeadOf(entry)), IsOk());
  }
  auto seqs = [&](const v1::AuditQuery& query) {
    std::vector<int64_t> out;
    auto entries = storage_->ListAudit(query);
    EXPECT_THAT(entries, IsOk());
    if (entries.ok()) {
      for (const auto& entry : *entries) out.push_back(entry.seq());
    }
    return out;
  };
  v1::AuditQuery by_run;
  by_run.set_run_id(3);
  EXPECT_EQ(seqs(by_run), (std::vector<int64_t>{2, 4, 6}));
  v1::AuditQuery after;
  after.set_after_seq(4);
  EXPECT_EQ(seqs(after), (std::vector<int64_t>{5, 6}));
  v1::AuditQuery since;
  // 2026-11-28T13:00:00Z
  since.set_since(absl::ToUnixSeconds(
      absl::FromCivil(absl::CivilSecond(2026, 11, 28, 13, 0, 0), absl::UTCTimeZone())));
  EXPECT_EQ(seqs(since), (std::vector<int64_t>{3, 4, 5, 6}));
}

TEST_P(StorageConformanceTest, ListAuditPageReadsALongLogInBoundedSteps) {
  for (int64_t seq = 1; seq <= 7; ++seq) {
    const v1::AuditEntry entry = MakeAuditEntry(
        seq, seq % 2 == 0 ? 3 : 0, absl::StrCat("2026-11-28T1", seq, ":00:00.000000Z"));
    ASSERT_THAT(storage_->AppendAudit(entry, HeadOf(entry)), IsOk());
  }
  // Each step goes on after the last seq the previous one read.
  std::vector<std::vector<int64_t>> steps;
  v1::AuditQuery query;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> page, storage_->ListAuditPage(query, 3));
    if (page.empty()) break;
    steps.emplace_back();
    for (const v1::AuditEntry& entry : page) steps.back().push_back(entry.seq());
    query.set_after_seq(page.back().seq());
  }
  EXPECT_EQ(steps, (std::vector<std::vector<int64_t>>{{1, 2, 3}, {4, 5, 6}, {7}}));
  // The query's filters apply before the limit.
  v1::AuditQuery by_run;
  by_run.set_run_id(3);
  by_run.set_after_seq(2);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::AuditEntry> page, storage_->ListAuditPage(by_run, 2));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq(), 4);
  EXPECT_EQ(page[1].seq(), 6);
  EXPECT_THAT(storage_->ListAuditPage({}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("at least one")));
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_AUDIT_H_
