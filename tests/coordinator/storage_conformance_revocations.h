// The Storage conformance suite, continued: revocations of admins and
// auditors by name. Included at the end of storage_conformance.h, so every
// backend that instantiates the suite runs these too.
#ifndef FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_REVOCATIONS_H_
#define FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_REVOCATIONS_H_

#include <string>
#include <vector>

#include "coordinator/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {

inline RevocationRecord RevocationRow(const std::string& name, PartyRole role, double at,
                                      const std::string& by, const std::string& reason) {
  RevocationRecord revocation;
  revocation.name = name;
  revocation.role = role;
  revocation.revoked_at = at;
  revocation.revoked_by = by;
  revocation.reason = reason;
  return revocation;
}

TEST_P(StorageConformanceTest, RevocationsAreEmptyAtFirst) {
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> revocations, storage_->ListRevocations());
  EXPECT_TRUE(revocations.empty());
}

TEST_P(StorageConformanceTest, RevocationsRoundTripByName) {
  ASSERT_THAT(storage_->AddRevocation(
                  RevocationRow("zoe", PartyRole::kAuditor, 20.5, "alice", "left the project")),
              IsOk());
  ASSERT_THAT(
      storage_->AddRevocation(RevocationRow("bob", PartyRole::kAdmin, 10, "alice", "key leaked")),
      IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> revocations, storage_->ListRevocations());
  ASSERT_EQ(revocations.size(), 2u);
  EXPECT_EQ(revocations[0].name, "bob");
  EXPECT_EQ(revocations[0].role, PartyRole::kAdmin);
  EXPECT_EQ(revocations[0].revoked_at, 10);
  EXPECT_EQ(revocations[0].revoked_by, "alice");
  EXPECT_EQ(revocations[0].reason, "key leaked");
  EXPECT_EQ(revocations[1].name, "zoe");
  EXPECT_EQ(revocations[1].role, PartyRole::kAuditor);
  EXPECT_EQ(revocations[1].revoked_at, 20.5);
}

TEST_P(StorageConformanceTest, ARevocationIsNeverReplaced) {
  ASSERT_THAT(
      storage_->AddRevocation(RevocationRow("bob", PartyRole::kAdmin, 10, "alice", "first")),
      IsOk());
  EXPECT_THAT(
      storage_->AddRevocation(RevocationRow("bob", PartyRole::kAuditor, 11, "carol", "second")),
      StatusIs(absl::StatusCode::kAlreadyExists, ::testing::HasSubstr("'bob' is already revoked")));
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> revocations, storage_->ListRevocations());
  ASSERT_EQ(revocations.size(), 1u);
  EXPECT_EQ(revocations[0].revoked_by, "alice");
  EXPECT_EQ(revocations[0].reason, "first");
}

TEST_P(StorageConformanceTest, AddRevocationRejectsAMissingNameOrTime) {
  EXPECT_THAT(storage_->AddRevocation(RevocationRow("", PartyRole::kAdmin, 10, "alice", "")),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("no party")));
  EXPECT_THAT(storage_->AddRevocation(RevocationRow("bob", PartyRole::kAdmin, 0, "alice", "")),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("no time")));
  ASSERT_OK_AND_ASSIGN(std::vector<RevocationRecord> revocations, storage_->ListRevocations());
  EXPECT_TRUE(revocations.empty());
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_COORDINATOR_STORAGE_CONFORMANCE_REVOCATIONS_H_
