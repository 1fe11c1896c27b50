#pragma once
// 16-byte vector access for element-wise kernels. Arena spans are 256-byte aligned and padded to
// a multiple of 64 elements (Note [arena layout]); spans that are not get a scalar tail.
//
// Vec4 is an aligned array rather than float4 so loops over its lanes index with unrolled
// compile-time constants (registers, never local memory) and read like the scalar rule.

#include <cstddef>
#include <cstdint>

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

// True when every pointer is 16-byte aligned, so the Vec4 path applies.
template <class... P>
__host__ __device__ bool aligned16(const P*... ptrs) {
  return ((reinterpret_cast<std::uintptr_t>(ptrs) % 16 == 0) && ...);
}

}  // namespace cutrain::kernels
