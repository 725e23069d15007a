// The contract of every fuzz target in tests/fuzz: libFuzzer's entry point,
// plus the seeds it starts from (valid inputs the target should accept, so
// that mutations explore near them). With clang and -DFEDMI_FUZZ=ON the
// targets are libFuzzer binaries (scripts/fuzz.sh); otherwise each links
// smoke_driver.cc, which replays the seeds and deterministic mutations of
// them under ctest.
#ifndef FEDMI_TESTS_FUZZ_FUZZ_TARGET_H_
#define FEDMI_TESTS_FUZZ_FUZZ_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fedmi::fuzz {

std::vector<std::string> Seeds();

// A scratch file path unique to this process, for targets whose parser
// reads files.
std::string ScratchFile(const char* name);

}  // namespace fedmi::fuzz

#endif  // FEDMI_TESTS_FUZZ_FUZZ_TARGET_H_
