// Where differential privacy's Gaussian noise comes from, outside LibTorch:
// the coordinator's central noise and each site's noise share for
// site-level DP-FedAvg. Privacy rests on the noise being unpredictable to
// whoever sees the noised sum, so production code uses
// MakeSecureNoiseSource; MakeSeededNoiseSource exists for reproducible tests
// and gives no privacy at all.
//
// A NoiseSource is not thread-safe; use one per thread.
#ifndef FEDMI_COMMON_PRIVACY_GAUSSIAN_NOISE_H_
#define FEDMI_COMMON_PRIVACY_GAUSSIAN_NOISE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace fedmi::privacy {

class NoiseSource {
 public:
  virtual ~NoiseSource() = default;
  // A standard normal draw in float64 (Box-Muller on 53-bit uniforms: tails
  // reach about 8.6 standard deviations, where float32 samplers stop near 5.8).
  double Normal();
  // values[i] += stddev * Normal() for each of `count` values.
  void AddTo(double* values, size_t count, double stddev);

 protected:
  // The next uniform draw in [0, 1), 53 random bits.
  virtual double Uniform() = 0;

 private:
  bool have_spare_ = false;
  double spare_ = 0;
};

// The kernel's CSPRNG (getrandom(2)), read in blocks. Aborts the process if
// the kernel refuses randomness: noise that is not random would silently
// void the guarantee.
std::unique_ptr<NoiseSource> MakeSecureNoiseSource();
// Deterministic (std::mt19937_64), for tests only.
std::unique_ptr<NoiseSource> MakeSeededNoiseSource(uint64_t seed);

}  // namespace fedmi::privacy

#endif  // FEDMI_COMMON_PRIVACY_GAUSSIAN_NOISE_H_
