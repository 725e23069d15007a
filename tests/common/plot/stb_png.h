// stb_image's PNG decoder, for tests that read back the PNGs fedmi writes.
// It defines the decoder's functions (static), so include it from one file
// of each test binary.
#ifndef FEDMI_TESTS_COMMON_PLOT_STB_PNG_H_
#define FEDMI_TESTS_COMMON_PLOT_STB_PNG_H_

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#endif  // FEDMI_TESTS_COMMON_PLOT_STB_PNG_H_
