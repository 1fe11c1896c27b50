#pragma once
// cuRAND's Philox generator behind RAII, for both backends. Built whenever the CUDA toolkit is
// found, also in CPU-only builds (libcurand needs no GPU and no driver for its host generator,
// and its device-API Philox compiles for the host, Note [Philox on the host]).

#include <curand.h>

#include <cstddef>
#include <cstdint>

#include "cutrain/device.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::detail {

[[noreturn]] void throw_curand(curandStatus_t status, const char* call, const char* file, int line);

#define CUTRAIN_CURAND_CHECK(call)                                                 \
  do {                                                                             \
    const curandStatus_t cutrain_status_ = (call);                                 \
    if (cutrain_status_ != CURAND_STATUS_SUCCESS)                                  \
      ::cutrain::detail::throw_curand(cutrain_status_, #call, __FILE__, __LINE__); \
  } while (0)

// A Philox4x32-10 generator. On the GPU, cuRAND's device generator. On the CPU, the same numbers
// computed in parallel (Note [Philox on the host]): uniform() always, normal() from an even
// stream position; an odd one goes to cuRAND's host generator (curandCreateGeneratorHost,
// created on first use), which needs no GPU. For a given seed and offset both devices produce
// the same sequence.
class CurandGenerator {
 public:
  CurandGenerator(Device device, std::uint64_t seed, std::uint64_t offset = 0);
  ~CurandGenerator();
  CurandGenerator(const CurandGenerator&) = delete;
  CurandGenerator& operator=(const CurandGenerator&) = delete;

  Device device() const { return device_; }
  void set_stream(NativeStream stream);
  // Positions the stream at `offset` numbers from its start.
  void set_offset(std::uint64_t offset);
  // Fill `out` (on the generator's device). uniform: n values in (0, 1]; normal: n values of
  // N(mean, std^2), n even (cuRAND's Box-Muller makes pairs).
  void uniform(float* out, std::size_t n);
  void normal(float* out, std::size_t n, float mean, float std);

 private:
  curandGenerator_t host_generator();  // CPU: cuRAND's, created and positioned on demand

  curandGenerator_t gen_ = nullptr;
  Device device_;
  std::uint64_t seed_ = 0;
  // CPU: the stream position while it is known (uniform() and normal() advance it by n); after
  // a normal() from an odd position it is cuRAND's host generator's, and later calls go on
  // through that generator.
  std::uint64_t position_ = 0;
  bool position_known_ = true;
  bool host_positioned_ = false;  // gen_ is at position_
};

}  // namespace cutrain::detail
