#include "coordinator/aggregator_internal.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi {
namespace aggregator_internal {
absl::Status NonFiniteError(absl::string_view strategy, const std::string& site,
                            const std::vector<TensorSpec>& specs, uint64_t parameter, float value) {
  uint64_t start = 0;
  for (const TensorSpec& spec : specs) {
    const uint64_t count = static_cast<uint64_t>(spec.NumElements());
    if (parameter < start + count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "update of site '", site, "' has ", value, " in tensor '", spec.name, "' at element ",
          parameter - start, "; ", strategy, " needs finite weights"));
    }
    start += count;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("update of site '", site, "' has ", value, " at parameter ", parameter));
}

absl::Status CheckAllFloat32(absl::string_view strategy, const std::vector<TensorSpec>& specs) {
  for (const TensorSpec& spec : specs) {
    if (spec.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat(strategy, " cannot aggregate tensor '", spec.name, "' of dtype ",
                       DTypeName(spec.dtype), ": only float32 tensors are supported"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadExactly(BundleFileReader& reader, char* out, size_t size, absl::string_view what) {
  size_t done = 0;
  while (done < size) {
    ASSIGN_OR_RETURN(size_t got, reader.Read(out + done, size - done));
    if (got == 0) {
      return absl::DataLossError(
          absl::StrCat(what, " ended ", size - done, " bytes early in a chunk"));
    }
    done += got;
  }
  return absl::OkStatus();
}

absl::Status ForEachFiniteFloatRun(absl::string_view strategy, const std::string& site,
                                   const std::vector<TensorSpec>& specs, BundleFileReader& update,
                                   std::vector<char>& buffer, const FloatRunConsumer& consume) {
  const uint64_t expected = TotalBytes(specs);
  const uint64_t parameters = expected / kFloatBytes;
  uint64_t offset = 0;  // body bytes handed on so far
  size_t carried = 0;   // bytes of a float split across two reads
  while (true) {
    ASSIGN_OR_RETURN(size_t got, update.Read(buffer.data() + carried, buffer.size() - carried));
    if (got == 0) break;
    const size_t available = carried + got;
    const size_t floats = available / kFloatBytes;
    const uint64_t first = offset / kFloatBytes;
    if (first + floats > parameters) {
      return absl::InvalidArgumentError(absl::StrCat("update of site '", site,
                                                     "' has more than the ", expected,
                                                     " body bytes its tensors need"));
    }
    for (size_t i = 0; i < floats; ++i) {
      const float value = LoadFloat(buffer.data() + i * kFloatBytes);
      if (!std::isfinite(value)) return NonFiniteError(strategy, site, specs, first + i, value);
    }
    RETURN_IF_ERROR(consume(first, buffer.data(), floats));
    offset += floats * kFloatBytes;
    carried = available - floats * kFloatBytes;
    std::memmove(buffer.data(), buffer.data() + floats * kFloatBytes, carried);
  }
  if (offset != expected || carried != 0) {
    return absl::InvalidArgumentError(absl::StrCat("update of site '", site, "' ended after ",
                                                   offset + carried, " body bytes, expected ",
                                                   expected));
  }
  return absl::OkStatus();
}

}  // namespace aggregator_internal
}  // namespace fedmi
