// Reading and writing NumPy .npy arrays inside .npz archives (a zip of
// "<name>.npy" members), the format MedMNIST ships its data in.
//
// Supported: npy format versions 1.0, 2.0 and 3.0 (3.0 only differs in the
// header's text encoding), C-ordered arrays of any simple dtype, zip members
// that are stored or deflated. Arrays keep their raw bytes and numpy dtype
// string; interpreting them is the caller's business (see image_data.h).
//
// Free functions without shared state; safe to call from several threads on
// different files.
#ifndef FEDMI_COMMON_DATA_NPZ_H_
#define FEDMI_COMMON_DATA_NPZ_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/env.h"

namespace fedmi {

// One numpy array: dtype as numpy's `descr` ("|u1", "<f4", "<i8", ...),
// shape (empty for a scalar) and the element bytes in C order, in the byte
// order that `dtype` names.
struct NpyArray {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<char> data;

  int64_t NumElements() const;
};

// Size in bytes of one element of a numpy `descr` such as "<f4" (4) or "|u1"
// (1). InvalidArgument for anything that is not a simple
// <byteorder><kind><size> descr (structured dtypes, "O", ...).
absl::StatusOr<int64_t> NpyItemSize(const std::string& dtype);

// Parses one .npy file image. `what` names the source in error messages,
// e.g. "npz /d/x.npz member 'train_images'".
absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes, const std::string& what);

// Serialises `array` as npy 1.0 (2.0 only if the header would not fit).
// InvalidArgument when the dtype is not understood or the data size does not
// match the shape.
absl::StatusOr<std::string> SerializeNpy(const NpyArray& array);

// Reads every "*.npy" member of the archive at `path`, keyed by member name
// without ".npy". Members with other names are ignored, like numpy's `load`
// does not turn them into arrays either.
// Errors, each naming the file: NotFound if it does not exist;
// InvalidArgument if it is not a zip, a member is not valid npy (bad magic,
// unparsable header, fortran_order True, data shorter or longer than the shape
// says); DataLoss if a member cannot be decompressed.
absl::StatusOr<std::map<std::string, NpyArray>> ReadNpz(const std::string& path);

// Writes `arrays` as an uncompressed .npz that numpy.load reads. The archive
// is built in memory and written through an AtomicFile of `env`, so readers
// never see half a file and the data and rename are fsynced. InvalidArgument
// for an empty name or an inconsistent array; Internal (or the Env's error,
// e.g. ResourceExhausted for a full disk) for I/O failures, naming the path.
absl::Status WriteNpz(const std::string& path, const std::map<std::string, NpyArray>& arrays,
                      Env& env = *Env::Default());

}  // namespace fedmi

#endif  // FEDMI_COMMON_DATA_NPZ_H_
