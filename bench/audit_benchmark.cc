// Cost of the audit log on this machine:
//   BM_SealEntry        hashing and signing one entry and its head (no storage)
//   BM_AppendToSqlite   AuditLog::Append into the coordinator's SQLite (WAL,
//                       synchronous=FULL): seal plus one durable transaction
// Run: build/bin/audit_benchmark [--benchmark_filter=...]
#include <cstdlib>
#include <filesystem>
#include <string>

#include "benchmark/benchmark.h"
#include "common/audit/audit.h"
#include "common/base/clock.h"
#include "common/provision/project_ca.h"
#include "coordinator/audit_log.h"
#include "coordinator/storage.h"

namespace fedmi {
namespace {

struct Keys {
  std::string dir;
  IssuedParty coordinator;
};

const Keys& TestKeys() {
  static const Keys* keys = [] {
    auto* made = new Keys;
    made->dir = (std::filesystem::temp_directory_path() / "fedmi-audit-bench-XXXXXX").string();
    if (mkdtemp(made->dir.data()) == nullptr) abort();
    auto ca = ProjectCa::Create(made->dir + "/pki", "bench");
    if (!ca.ok()) abort();
    auto party = (*ca)->Issue("coordinator-audit", PartyRole::kAuditSigner, {});
    if (!party.ok()) abort();
    made->coordinator = *party;
    return made;
  }();
  return *keys;
}

void BM_SealEntry(benchmark::State& state) {
  auto signer =
      audit::AuditSigner::Create(TestKeys().coordinator.key_pem, TestKeys().coordinator.cert_pem);
  if (!signer.ok()) abort();
  v1::AuditEntry previous;
  for (auto _ : state) {
    v1::AuditEntry draft;
    draft.set_time("2026-11-28T23:33:19.123456Z");
    draft.set_actor("site-3");
    draft.set_action("update.received");
    draft.set_run_id(1);
    draft.set_round(4);
    draft.set_detail_json(
        audit::UpdateReceivedDetail("site-3", 4000000, std::string(64, 'a'), 500));
    auto entry = (*signer)->Seal(draft, previous.seq() > 0 ? &previous : nullptr);
    auto head = (*signer)->SignHead(*entry);
    benchmark::DoNotOptimize(head);
    previous = *entry;
  }
}
BENCHMARK(BM_SealEntry)->Unit(benchmark::kMicrosecond);

void BM_AppendToSqlite(benchmark::State& state) {
  const std::string db = TestKeys().dir + "/append.db";
  std::filesystem::remove(db);
  auto storage = OpenSqliteStorage(db);
  if (!storage.ok()) abort();
  auto signer =
      audit::AuditSigner::Create(TestKeys().coordinator.key_pem, TestKeys().coordinator.cert_pem);
  if (!signer.ok()) abort();
  RealClock clock;
  auto log = AuditLog::Open(storage->get(), &clock, *std::move(signer));
  if (!log.ok()) abort();
  for (auto _ : state) {
    auto entry = (*log)->Append("site-3", fedmi::audit::Action::kUpdateReceived, 1, 4,
                                {{"site", "site-3"}, {"bytes", 4000000}, {"examples", 500}});
    if (!entry.ok()) abort();
  }
}
BENCHMARK(BM_AppendToSqlite)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fedmi
