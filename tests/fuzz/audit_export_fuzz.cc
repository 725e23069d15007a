// What an auditor feeds `fedmi audit verify`: an export file (JSON Lines)
// and receipt files (JSON), both possibly from an untrusted source.
#include <fstream>

#include "common/audit/audit.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)fedmi::audit::ReceiptFromJson(text);
  const std::string path = fedmi::fuzz::ScratchFile("audit.jsonl");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  auto log = fedmi::audit::ReadExport(path);
  if (log.ok() && !log->entries.empty()) {
    // Whatever parsed must go through verification without crashing.
    (void)fedmi::audit::VerifyLog(log->entries, log->head, log->signer_certificate_pem, "");
  }
  return 0;
}

namespace fedmi::fuzz {

std::vector<std::string> Seeds() {
  audit::ExportedLog log;
  v1::AuditEntry draft;
  draft.set_time("2026-11-28T23:33:19.123456Z");
  draft.set_actor("site-1");
  draft.set_action("update.received");
  draft.set_run_id(1);
  draft.set_round(2);
  draft.set_detail_json(audit::UpdateReceivedDetail("site-1", 16, std::string(64, 'c'), 10));
  log.entries.push_back(audit::SealUnsigned(draft, nullptr));
  log.entries.push_back(audit::SealUnsigned(draft, &log.entries.back()));
  log.head.set_seq(2);
  log.head.set_hash(log.entries.back().hash());
  const std::string path = ScratchFile("seed.jsonl");
  if (!audit::WriteExport(path, log).ok()) abort();
  std::ifstream in(path, std::ios::binary);
  std::string exported((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  v1::UploadReceipt receipt;
  receipt.set_run_id(1);
  receipt.set_round(2);
  receipt.set_site("site-1");
  receipt.set_sha256(std::string(32, '\x07'));
  receipt.set_audit_seq(2);
  return {exported, audit::ReceiptToJson(receipt)};
}

}  // namespace fedmi::fuzz
