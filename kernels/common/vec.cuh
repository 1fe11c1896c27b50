#pragma once
// 16-byte vector access for element-wise kernels. Arena spans are 256-byte aligned and padded to
// a multiple of 64 elements (Note [arena layout]); spans that are not get a scalar tail.
//
// Vec4 is an aligned array rather than float4 so loops over its lanes index with unrolled
// compile-time constants (registers, never local memory) and read like the scalar rule.

#include <cstddef>
#include <cstdint>

#include "kernels/common/half.cuh"

namespace cutrain::kernels {

struct alignas(16) Vec4 {
  float v[4];
};

__device__ __forceinline__ Vec4 load4(const float* p, std::size_t i) {
  return reinterpret_cast<const Vec4*>(p)[i];
}
__device__ __forceinline__ void store4(float* p, std::size_t i, const Vec4& x) {
  reinterpret_cast<Vec4*>(p)[i] = x;
}

// Note [16-bit compute copy]: the four lanes of vector i rounded to 16 bits, one 8-byte store.
// Element index 4 i + lane draws the stochastic bits, as the CPU loop's element does.
template <class Copy>
__device__ __forceinline__ void store_half4(const Copy& c, std::size_t i, const Vec4& x,
                                            std::uint64_t step) {
  std::uint32_t h[4];  // unrolled: registers, packed two lanes per word (no local memory)
#pragma unroll
  for (int lane = 0; lane < 4; ++lane)
    h[lane] = rules::to_half(c.kind, x.v[lane], c.stochastic,
                             c.stochastic ? rules::rounding_bits(c.seed, step, 4 * i + lane) : 0U);
  reinterpret_cast<uint2*>(c.data)[i] = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
}

// True when every pointer is 16-byte aligned, so the Vec4 path applies.
template <class... P>
__host__ __device__ bool aligned16(const P*... ptrs) {
  return ((reinterpret_cast<std::uintptr_t>(ptrs) % 16 == 0) && ...);
}

}  // namespace cutrain::kernels
