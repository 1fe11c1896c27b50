#pragma once
// cuRAND's Philox4x32-10 stream as a rule both backends call (Note [Philox on the host],
// src/rng/philox_host.hpp): number p of the stream of `seed` - what curandGenerateUniform writes
// at offset p - is lane p % 4 of block p / 4.
//
// cuRAND's device-API functions compile for the host too: their QUALIFIERS macro is
// overridable, so here it makes them __host__ __device__ under nvcc and plain inline functions
// under g++. It must be defined before <curand_kernel.h> is first read in a translation unit,
// hence this header goes before any other that includes it.
#if defined(CURAND_KERNEL_H_) && !defined(CUTRAIN_PHILOX_QUALIFIERS)
#error "include kernels/common/philox.cuh before <curand_kernel.h>"
#endif
#define CUTRAIN_PHILOX_QUALIFIERS
#if defined(__CUDACC__)
#define QUALIFIERS static __forceinline__ __host__ __device__
#else
#define QUALIFIERS static inline
#endif
#include <curand_kernel.h>

#include <cstdint>

#include "cutrain/hd.hpp"

namespace cutrain::rules {

// cuRAND's generator interleaves this many subsequences block by block: block b is block
// b / 65536 of subsequence b % 65536 (counter {b / 65536 over x and y, b % 65536, 0}).
inline constexpr std::uint64_t kPhiloxSubsequences = 65536;

// The 4 raw 32-bit numbers of block `block` (numbers 4 block .. 4 block + 3).
CUTRAIN_HD uint4 philox_block(std::uint64_t seed, std::uint64_t block) {
  const std::uint64_t k = block / kPhiloxSubsequences;
  const uint4 counter = {static_cast<unsigned>(k), static_cast<unsigned>(k >> 32),
                         static_cast<unsigned>(block % kPhiloxSubsequences), 0U};
  const uint2 key = {static_cast<unsigned>(seed), static_cast<unsigned>(seed >> 32)};
  return curand_Philox4x32_10(counter, key);
}

// The block's 4 uniforms in (0, 1], as curandGenerateUniform makes them.
CUTRAIN_HD void philox_uniform4(std::uint64_t seed, std::uint64_t block, float out[4]) {
  const uint4 r = philox_block(seed, block);
  out[0] = _curand_uniform(r.x);
  out[1] = _curand_uniform(r.y);
  out[2] = _curand_uniform(r.z);
  out[3] = _curand_uniform(r.w);
}

}  // namespace cutrain::rules
