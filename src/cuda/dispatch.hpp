#pragma once
// Backend dispatch helper. Each family of operations dispatches in one function:
//   if (device.is_cpu()) { cpu loop } else { CUTRAIN_ON_CUDA(kernels::launch_...(...)); }
// In a CPU-only build the CUDA branch throws instead of referencing kernels that do not exist.

#include "cutrain/error.hpp"

#if CUTRAIN_WITH_CUDA
#define CUTRAIN_ON_CUDA(...) __VA_ARGS__
#else
#define CUTRAIN_ON_CUDA(...) \
  CUTRAIN_FAIL("this operation needs a GPU but cutrain was built without CUDA (CUTRAIN_CUDA=OFF)")
#endif
