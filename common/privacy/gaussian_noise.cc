#include "common/privacy/gaussian_noise.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "common/base/log.h"

namespace fedmi::privacy {
namespace {

constexpr double kTwoToMinus53 = 1.0 / static_cast<double>(uint64_t{1} << 53);

double UniformFromBits(uint64_t bits) { return static_cast<double>(bits >> 11) * kTwoToMinus53; }

class SecureNoiseSource : public NoiseSource {
 protected:
  double Uniform() override {
    if (next_ == block_.size()) Refill();
    return UniformFromBits(block_[next_++]);
  }

 private:
  void Refill() {
    char* out = reinterpret_cast<char*>(block_.data());
    size_t left = sizeof(block_);
    while (left > 0) {
      const ssize_t got = getrandom(out, left, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        FEDMI_LOG(ERROR) << "getrandom failed (" << std::strerror(errno)
                         << "): differential-privacy noise cannot be drawn";
        std::abort();
      }
      out += got;
      left -= static_cast<size_t>(got);
    }
    next_ = 0;
  }

  std::array<uint64_t, 512> block_{};
  size_t next_ = block_.size();
};

class SeededNoiseSource : public NoiseSource {
 public:
  explicit SeededNoiseSource(uint64_t seed) : engine_(seed) {}

 protected:
  double Uniform() override { return UniformFromBits(engine_()); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace

double NoiseSource::Normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  // 1 - u lies in (0, 1]: the logarithm stays finite.
  const double radius = std::sqrt(-2.0 * std::log1p(-Uniform()));
  const double angle = 2.0 * M_PI * Uniform();
  spare_ = radius * std::sin(angle);
  have_spare_ = true;
  return radius * std::cos(angle);
}

void NoiseSource::AddTo(double* values, size_t count, double stddev) {
  for (size_t i = 0; i < count; ++i) values[i] += stddev * Normal();
}

std::unique_ptr<NoiseSource> MakeSecureNoiseSource() {
  return std::make_unique<SecureNoiseSource>();
}

std::unique_ptr<NoiseSource> MakeSeededNoiseSource(uint64_t seed) {
  return std::make_unique<SeededNoiseSource>(seed);
}

}  // namespace fedmi::privacy
