#pragma once
// CUTRAIN_HD marks a function as callable from host and device code. Every element-wise rule
// (an optimizer update, an activation) is written once with it, and both the CUDA kernel and the
// CPU loop call that one function (see Note [bit-identical backends] in
// cmake/CutrainWarnings.cmake).

#if defined(__CUDACC__)
#define CUTRAIN_HD __host__ __device__ __forceinline__
#else
#define CUTRAIN_HD inline
#endif
