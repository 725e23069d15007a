// TensorChunk messages built by hand, for tests that feed a bundle reader
// chunk by chunk.
#ifndef FEDMI_TESTS_COMMON_TENSOR_CHUNK_TEST_UTIL_H_
#define FEDMI_TESTS_COMMON_TENSOR_CHUNK_TEST_UTIL_H_

#include <string>

#include "fedmi/v1/tensor.pb.h"

namespace fedmi {

inline v1::TensorChunk HeaderChunk(const v1::BundleHeader& header) {
  v1::TensorChunk chunk;
  *chunk.mutable_header() = header;
  return chunk;
}

inline v1::TensorChunk DataChunk(const std::string& data) {
  v1::TensorChunk chunk;
  chunk.set_data(data);
  return chunk;
}

}  // namespace fedmi

#endif  // FEDMI_TESTS_COMMON_TENSOR_CHUNK_TEST_UTIL_H_
