#include "common/data/npz.h"

#include <zip.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/env.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr size_t kNpyMagicSize = 6;
// numpy aligns the start of the data to this many bytes.
constexpr size_t kNpyAlignment = 64;
// numpy refuses headers larger than this unless told otherwise; a longer
// header is a sign of a corrupt or hostile file.
constexpr uint32_t kMaxNpyHeaderBytes = 1 << 20;

// The parsed npy header dictionary, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// Parses the Python literal numpy writes as the npy header. Only the subset
// numpy produces is accepted: a dict of quoted keys whose values are quoted
// strings, True/False or tuples of integers.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& text, const std::string& what) : text_(text), what_(what) {}

  absl::StatusOr<NpyHeader> Parse() {
    NpyHeader header;
    bool have_descr = false, have_order = false, have_shape = false;
    RETURN_IF_ERROR(Expect('{'));
    while (true) {
      SkipSpace();
      if (Peek() == '}') {
        ++pos_;
        break;
      }
      ASSIGN_OR_RETURN(std::string key, ParseString());
      RETURN_IF_ERROR(Expect(':'));
      SkipSpace();
      if (key == "descr") {
        if (Peek() == '[') {
          return Error("has a structured dtype, which fedmi does not support");
        }
        ASSIGN_OR_RETURN(header.descr, ParseString());
        have_descr = true;
      } else if (key == "fortran_order") {
        ASSIGN_OR_RETURN(header.fortran_order, ParseBool());
        have_order = true;
      } else if (key == "shape") {
        ASSIGN_OR_RETURN(header.shape, ParseShape());
        have_shape = true;
      } else {
        return Error(absl::StrCat("has unexpected header key '", key, "'"));
      }
      SkipSpace();
      if (Peek() == ',') ++pos_;
    }
    if (!have_descr || !have_order || !have_shape) {
      return Error("header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    return header;
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  absl::Status Error(const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(what_, " is not a valid .npy array: ", problem));
  }

  absl::Status Expect(char c) {
    SkipSpace();
    if (Peek() != c) {
      return Error(absl::StrCat("header has '", std::string(1, Peek()), "' at offset ", pos_,
                                " where '", std::string(1, c), "' was expected"));
    }
    ++pos_;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ParseString() {
    SkipSpace();
    char quote = Peek();
    if (quote != '\'' && quote != '"') {
      return Error(absl::StrCat("header has no quoted string at offset ", pos_));
    }
    size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos) return Error("header has an unterminated string");
    std::string value = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return value;
  }

  absl::StatusOr<bool> ParseBool() {
    if (text_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (text_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    return Error("header's fortran_order is neither True nor False");
  }

  absl::StatusOr<std::vector<int64_t>> ParseShape() {
    std::vector<int64_t> shape;
    RETURN_IF_ERROR(Expect('('));
    while (true) {
      SkipSpace();
      if (Peek() == ')') {
        ++pos_;
        return shape;
      }
      if (!std::isdigit(static_cast<unsigned char>(Peek()))) {
        return Error(absl::StrCat("header's shape has a non-integer at offset ", pos_));
      }
      int64_t dim = 0;
      while (std::isdigit(static_cast<unsigned char>(Peek()))) {
        if (dim > (std::numeric_limits<int64_t>::max() - 9) / 10) {
          return Error("header's shape has a dimension that overflows int64");
        }
        dim = dim * 10 + (text_[pos_++] - '0');
      }
      if (Peek() == 'L') ++pos_;  // Python 2 wrote long integers as "3L".
      shape.push_back(dim);
      SkipSpace();
      if (Peek() == ',') ++pos_;
    }
  }

  const std::string& text_;
  const std::string& what_;
  size_t pos_ = 0;
};

std::string ShapeTuple(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return absl::StrCat("(", shape[0], ",)");
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

// Byte count the array's shape and dtype call for, or an error if it
// overflows.
absl::StatusOr<int64_t> ExpectedDataBytes(const std::string& dtype,
                                          const std::vector<int64_t>& shape,
                                          const std::string& what) {
  ASSIGN_OR_RETURN(int64_t bytes, NpyItemSize(dtype));
  for (int64_t dim : shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has negative dimension in shape ", ShapeTuple(shape)));
    }
    if (dim != 0 && bytes > std::numeric_limits<int64_t>::max() / dim) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has shape ", ShapeTuple(shape), " whose size overflows"));
    }
    bytes *= dim;
  }
  return bytes;
}

std::string ZipErrorString(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

struct ZipCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

// libzip deletes an archive with no entries instead of writing it, but numpy
// happily writes (and reads) an empty .npz: the bare end-of-central-directory
// record.
constexpr char kEmptyZip[22] = {'P', 'K', 5, 6};

struct ZipSourceFree {
  void operator()(zip_source_t* source) const { zip_source_free(source); }
};
using ZipSourcePtr = std::unique_ptr<zip_source_t, ZipSourceFree>;

// The bytes of an uncompressed zip holding `members`, built in memory so that
// the file itself can be written through an Env.
absl::StatusOr<std::string> ZipInMemory(
    const std::vector<std::pair<std::string, std::string>>& members, const std::string& path) {
  if (members.empty()) return std::string(kEmptyZip, sizeof(kEmptyZip));
  zip_error_t error;
  zip_error_init(&error);
  ZipSourcePtr buffer(zip_source_buffer_create(nullptr, 0, 0, &error));
  if (buffer == nullptr) {
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", reason));
  }
  // zip_close would free the source with the archive; the bytes are read after.
  zip_source_keep(buffer.get());
  zip_t* archive = zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error);
  if (archive == nullptr) {
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    zip_source_free(buffer.get());  // the reference zip_open_from_source did not take
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", reason));
  }
  zip_error_fini(&error);
  for (const auto& [member, bytes] : members) {
    zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
    zip_int64_t index = -1;
    if (source != nullptr) {
      index = zip_file_add(archive, member.c_str(), source, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
      if (index < 0) zip_source_free(source);
    }
    if (index < 0 || zip_set_file_compression(archive, index, ZIP_CM_STORE, 0) != 0) {
      const std::string reason = zip_strerror(archive);
      zip_discard(archive);
      return absl::InternalError(absl::StrCat("cannot add ", member, " to ", path, ": ", reason));
    }
  }
  if (zip_close(archive) != 0) {
    const std::string reason = zip_strerror(archive);
    zip_discard(archive);
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", reason));
  }
  zip_stat_t stat;
  zip_stat_init(&stat);
  std::string bytes;
  if (zip_source_stat(buffer.get(), &stat) == 0 && zip_source_open(buffer.get()) == 0) {
    bytes.resize(stat.size);
    const zip_int64_t read = zip_source_read(buffer.get(), bytes.data(), bytes.size());
    zip_source_close(buffer.get());
    if (read == static_cast<zip_int64_t>(bytes.size())) return bytes;
  }
  return absl::InternalError(absl::StrCat("cannot write ", path, ": ",
                                          zip_error_strerror(zip_source_error(buffer.get()))));
}

}  // namespace

int64_t NpyArray::NumElements() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

absl::StatusOr<int64_t> NpyItemSize(const std::string& dtype) {
  auto bad = [&dtype]() {
    return absl::InvalidArgumentError(absl::StrCat(
        "numpy dtype '", dtype, "' is not a simple <byteorder><kind><size> dtype such as '<f4'"));
  };
  if (dtype.size() < 3) return bad();
  const char order = dtype[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') return bad();
  if (std::string("biufc").find(dtype[1]) == std::string::npos) return bad();
  int64_t size = 0;
  for (size_t i = 2; i < dtype.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(dtype[i])) || size > 1024) return bad();
    size = size * 10 + (dtype[i] - '0');
  }
  if (size <= 0) return bad();
  return size;
}

absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes, const std::string& what) {
  auto invalid = [&what](const std::string& problem) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a valid .npy array: ", problem));
  };
  if (bytes.size() < kNpyMagicSize + 2 || bytes.compare(0, kNpyMagicSize, kNpyMagic) != 0) {
    return invalid("missing the \\x93NUMPY magic");
  }
  const auto byte_at = [&bytes](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i]));
  };
  const int major = static_cast<int>(byte_at(6));
  const int minor = static_cast<int>(byte_at(7));
  size_t header_start = 0;
  uint32_t header_len = 0;
  if (major == 1) {
    if (bytes.size() < 10) return invalid("truncated header length");
    header_len = byte_at(8) | (byte_at(9) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return invalid("truncated header length");
    header_len = byte_at(8) | (byte_at(9) << 8) | (byte_at(10) << 16) | (byte_at(11) << 24);
    header_start = 12;
  } else {
    return invalid(absl::StrCat("format version ", major, ".", minor,
                                " is not supported (1.0, 2.0, 3.0 are)"));
  }
  if (header_len > kMaxNpyHeaderBytes || header_start + header_len > bytes.size()) {
    return invalid(
        absl::StrCat("header length ", header_len, " exceeds the ", bytes.size(), "-byte member"));
  }
  const std::string header_text = bytes.substr(header_start, header_len);
  ASSIGN_OR_RETURN(NpyHeader header, NpyHeaderParser(header_text, what).Parse());
  if (header.fortran_order) {
    return invalid(
        "fortran_order is True; only C-ordered arrays are supported "
        "(save with numpy.ascontiguousarray)");
  }
  absl::StatusOr<int64_t> expected = ExpectedDataBytes(header.descr, header.shape, what);
  if (!expected.ok()) return invalid(std::string(expected.status().message()));

  const size_t data_start = header_start + header_len;
  const uint64_t available = bytes.size() - data_start;
  if (available < static_cast<uint64_t>(*expected)) {
    return invalid(absl::StrCat("data is ", available, " bytes but dtype ", header.descr,
                                " and shape ", ShapeTuple(header.shape), " need ", *expected));
  }
  if (available > static_cast<uint64_t>(*expected)) {
    return invalid(absl::StrCat("data is ", available, " bytes, more than the ", *expected,
                                " that dtype ", header.descr, " and shape ",
                                ShapeTuple(header.shape), " need"));
  }
  NpyArray array;
  array.dtype = std::move(header.descr);
  array.shape = std::move(header.shape);
  array.data.assign(bytes.begin() + data_start, bytes.end());
  return array;
}

absl::StatusOr<std::string> SerializeNpy(const NpyArray& array) {
  ASSIGN_OR_RETURN(int64_t expected, ExpectedDataBytes(array.dtype, array.shape, "array"));
  if (static_cast<uint64_t>(expected) != array.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("array of dtype ", array.dtype, " and shape ",
                                                   ShapeTuple(array.shape), " needs ", expected,
                                                   " bytes of data but has ", array.data.size()));
  }
  std::string dict =
      absl::StrCat("{'descr': '", array.dtype,
                   "', 'fortran_order': False, 'shape': ", ShapeTuple(array.shape), ", }");
  // Pad with spaces and end with '\n' so the data starts 64-byte aligned.
  size_t prefix = kNpyMagicSize + 2 + 2;
  const bool version2 = prefix + dict.size() + 1 > 0xffff;
  if (version2) prefix += 2;
  const size_t unpadded = prefix + dict.size() + 1;
  const size_t padded = (unpadded + kNpyAlignment - 1) / kNpyAlignment * kNpyAlignment;
  dict.append(padded - unpadded, ' ');
  dict.push_back('\n');

  std::string out(kNpyMagic, kNpyMagicSize);
  out.push_back(static_cast<char>(version2 ? 2 : 1));
  out.push_back(0);
  const uint32_t header_len = static_cast<uint32_t>(dict.size());
  out.push_back(static_cast<char>(header_len & 0xff));
  out.push_back(static_cast<char>((header_len >> 8) & 0xff));
  if (version2) {
    out.push_back(static_cast<char>((header_len >> 16) & 0xff));
    out.push_back(static_cast<char>((header_len >> 24) & 0xff));
  }
  out += dict;
  out.append(array.data.data(), array.data.size());
  return out;
}

absl::StatusOr<std::map<std::string, NpyArray>> ReadNpz(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("npz file ", path, " does not exist"));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("npz path ", path, " is a directory"));
  }
  int open_error = 0;
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open(path.c_str(), ZIP_RDONLY, &open_error));
  if (archive == nullptr) {
    if (open_error == ZIP_ER_NOZIP || open_error == ZIP_ER_INCONS) {
      return absl::InvalidArgumentError(
          absl::StrCat("npz file ", path, " is not a zip archive: ", ZipErrorString(open_error)));
    }
    return absl::InternalError(
        absl::StrCat("cannot open npz file ", path, ": ", ZipErrorString(open_error)));
  }

  std::map<std::string, NpyArray> arrays;
  const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive.get(), i, 0, &stat) != 0 || !(stat.valid & ZIP_STAT_NAME) ||
        !(stat.valid & ZIP_STAT_SIZE)) {
      return absl::InvalidArgumentError(
          absl::StrCat("npz file ", path, " has an unreadable directory entry ", i));
    }
    const std::string member = stat.name;
    constexpr char kSuffix[] = ".npy";
    if (member.size() <= 4 || member.compare(member.size() - 4, 4, kSuffix) != 0) continue;
    const std::string key = member.substr(0, member.size() - 4);
    const std::string what = absl::StrCat("npz ", path, " member '", key, "'");

    std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(archive.get(), i, 0));
    if (file == nullptr) {
      return absl::DataLossError(
          absl::StrCat("cannot open ", what, ": ", zip_strerror(archive.get())));
    }
    std::string bytes(stat.size, '\0');
    zip_uint64_t done = 0;
    while (done < stat.size) {
      const zip_int64_t got = zip_fread(file.get(), bytes.data() + done, stat.size - done);
      if (got < 0) {
        return absl::DataLossError(
            absl::StrCat("cannot decompress ", what, ": ", zip_file_strerror(file.get())));
      }
      if (got == 0) break;
      done += static_cast<zip_uint64_t>(got);
    }
    if (done != stat.size) {
      return absl::DataLossError(
          absl::StrCat(what, " ends after ", done, " of ", stat.size, " bytes"));
    }
    ASSIGN_OR_RETURN(NpyArray array, ParseNpy(bytes, what));
    arrays[key] = std::move(array);
  }
  return arrays;
}

absl::Status WriteNpz(const std::string& path, const std::map<std::string, NpyArray>& arrays,
                      Env& env) {
  // Serialise everything first: libzip only reads the buffers at zip_close.
  std::vector<std::pair<std::string, std::string>> members;
  members.reserve(arrays.size());
  for (const auto& [name, array] : arrays) {
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": empty array name"));
    }
    absl::StatusOr<std::string> bytes = SerializeNpy(array);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write ", path, ": member '", name, "': ", bytes.status().message()));
    }
    members.emplace_back(name + ".npy", std::move(*bytes));
  }

  ASSIGN_OR_RETURN(std::string zip, ZipInMemory(members, path));
  return WriteFileAtomically(env, path, zip);
}

}  // namespace fedmi
