#include "common/tensor/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/base/enum_names.h"
#include "common/base/env.h"
#include "common/base/status.h"
#include "nlohmann/json.hpp"

namespace fedmi {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kMetadataKey[] = "__metadata__";
// The reference implementation refuses larger headers; so do we, so a
// corrupt length cannot make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100 * 1000 * 1000;

constexpr EnumName<DType> kSafetensorsDTypes[] = {
    {DType::kFloat32, "F32"}, {DType::kFloat64, "F64"}, {DType::kInt64, "I64"},
    {DType::kInt32, "I32"},   {DType::kUInt8, "U8"},
};

const char* SafetensorsDType(DType dtype) { return NameOf(kSafetensorsDTypes, dtype); }

absl::StatusOr<DType> DTypeFromSafetensors(const std::string& name) {
  if (std::optional<DType> dtype = ParseName(kSafetensorsDTypes, name)) return *dtype;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype ", name, " is not supported (F32, F64, I64, I32, U8 are)"));
}

void AppendLittleEndian64(uint64_t value, std::string& out) {
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((value >> (8 * b)) & 0xff));
}

// A tensor's entry in the header, before ordering by offset.
struct HeaderEntry {
  TensorSpec spec;
  uint64_t begin = 0;
  uint64_t end = 0;
};

absl::StatusOr<HeaderEntry> ParseEntry(const std::string& name, const Json& value,
                                       uint64_t buffer_bytes, const std::string& path) {
  auto invalid = [&](const std::string& problem) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors ", path, ": tensor '", name, "' ", problem));
  };
  if (!value.is_object()) return invalid("is not a JSON object");
  HeaderEntry entry;
  entry.spec.name = name;

  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) return invalid("has no string \"dtype\"");
  absl::StatusOr<DType> parsed_dtype = DTypeFromSafetensors(dtype->get<std::string>());
  if (!parsed_dtype.ok()) return invalid(std::string(parsed_dtype.status().message()));
  entry.spec.dtype = *parsed_dtype;

  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) return invalid("has no \"shape\" array");
  // Track the byte size as we go so a huge shape cannot overflow.
  uint64_t bytes = DTypeSize(entry.spec.dtype);
  bool fits = true;
  for (const Json& dim : *shape) {
    if (!dim.is_number_integer() || dim.get<int64_t>() < 0) {
      return invalid(absl::StrCat("has shape ", shape->dump(),
                                  " with a dimension that is not a non-negative integer"));
    }
    const uint64_t d = dim.get<uint64_t>();
    entry.spec.shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / d) fits = false;
    if (fits) bytes *= d;
  }
  if (!fits) return invalid(absl::StrCat("has shape ", shape->dump(), " whose size overflows"));

  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    return invalid("has no \"data_offsets\" pair of non-negative integers");
  }
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > buffer_bytes) {
    return invalid(absl::StrCat("has data_offsets [", entry.begin, ", ", entry.end,
                                "] outside the ", buffer_bytes, "-byte buffer"));
  }
  if (entry.end - entry.begin != bytes) {
    return invalid(absl::StrCat("has data_offsets [", entry.begin, ", ", entry.end, "] spanning ",
                                entry.end - entry.begin, " bytes, but ", dtype->get<std::string>(),
                                " ", ShapeString(entry.spec.shape), " needs ", bytes));
  }
  return entry;
}

}  // namespace

absl::Status WriteSafetensors(const std::string& path, const TensorBundle& bundle,
                              const std::map<std::string, std::string>& metadata, Env& env) {
  if (bundle.body.size() != bundle.ExpectedBodyBytes()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write safetensors ", path, ": bundle body has ", bundle.body.size(),
                     " bytes but its tensors need ", bundle.ExpectedBodyBytes()));
  }
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[kMetadataKey] = std::move(meta);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorSpec& spec : bundle.specs) {
    if (spec.name.empty() || spec.name == kMetadataKey || !names.insert(spec.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write safetensors ", path,
                                                     ": tensor name '", spec.name,
                                                     "' is empty, reserved or duplicated"));
    }
    const uint64_t end = offset + spec.ByteSize();
    header[spec.name] = {{"dtype", SafetensorsDType(spec.dtype)},
                         {"shape", spec.shape},
                         {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string header_text = header.dump();
  // Pad so the buffer starts 8-byte aligned, as the format asks.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  std::string prefix;
  AppendLittleEndian64(header_text.size(), prefix);
  // Appended piece by piece: the body can be a whole model.
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, env.NewAtomicFile(DirName(path)));
  RETURN_IF_ERROR(file->Append(prefix));
  RETURN_IF_ERROR(file->Append(header_text));
  RETURN_IF_ERROR(file->Append(absl::string_view(bundle.body.data(), bundle.body.size())));
  return file->Commit(path);
}

absl::StatusOr<TensorBundle> ReadSafetensors(const std::string& path,
                                             std::map<std::string, std::string>* metadata) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("safetensors file ", path, " does not exist"));
  }
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot stat safetensors file ", path, ": ", ec.message()));
  }
  auto invalid = [&path](const std::string& problem) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors ", path, ": ", problem));
  };
  if (file_bytes < 8) return invalid(absl::StrCat("file has only ", file_bytes, " bytes"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot open safetensors file ", path));

  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  uint64_t header_bytes = 0;
  for (int b = 0; b < 8; ++b) header_bytes |= static_cast<uint64_t>(length_bytes[b]) << (8 * b);
  if (header_bytes > kMaxHeaderBytes || header_bytes > file_bytes - 8) {
    return invalid(absl::StrCat("header length ", header_bytes, " exceeds the ", file_bytes - 8,
                                " bytes after the length field"));
  }
  std::string header_text(header_bytes, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_bytes));
  const uint64_t buffer_bytes = file_bytes - 8 - header_bytes;
  std::vector<char> buffer(buffer_bytes);
  in.read(buffer.data(), static_cast<std::streamsize>(buffer_bytes));
  if (!in) return absl::InternalError(absl::StrCat("cannot read safetensors file ", path));

  const Json header = Json::parse(header_text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return invalid("header is not a JSON object");
  }

  std::vector<HeaderEntry> entries;
  std::map<std::string, std::string> parsed_metadata;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) return invalid("__metadata__ is not a JSON object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) {
          return invalid(absl::StrCat("__metadata__ value of '", key, "' is not a string"));
        }
        parsed_metadata[key] = text.get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(HeaderEntry entry, ParseEntry(name, value, buffer_bytes, path));
    entries.push_back(std::move(entry));
  }
  // Header order is free in the format; the data order is what writers
  // preserve (and what fedmi's bundle order means).
  std::stable_sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected_begin = 0;
  TensorBundle bundle;
  for (HeaderEntry& entry : entries) {
    if (entry.begin != expected_begin) {
      return invalid(absl::StrCat("tensor '", entry.spec.name, "' starts at byte ", entry.begin,
                                  " but the previous tensor ends at ", expected_begin,
                                  entry.begin < expected_begin ? " (overlap)" : " (gap)"));
    }
    expected_begin = entry.end;
    bundle.specs.push_back(std::move(entry.spec));
  }
  if (expected_begin != buffer_bytes) {
    return invalid(
        absl::StrCat("tensors cover ", expected_begin, " bytes but the buffer has ", buffer_bytes));
  }
  bundle.body = std::move(buffer);
  if (metadata != nullptr) *metadata = std::move(parsed_metadata);
  return bundle;
}

}  // namespace fedmi
