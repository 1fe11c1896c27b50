#pragma once
// GPU test cases skip, with the reason, when no GPU is usable. With CUTRAIN_REQUIRE_GPU=1 in the
// environment (scripts/gpu_check.sh sets it) they fail instead, so a GPU run cannot skip silently.

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "cutrain/device.hpp"

#define CUTRAIN_REQUIRE_GPU()                                                 \
  do {                                                                        \
    if (!::cutrain::cuda_status().usable) {                                   \
      const char* cutrain_force_ = std::getenv("CUTRAIN_REQUIRE_GPU");        \
      if (cutrain_force_ != nullptr && std::strcmp(cutrain_force_, "1") == 0) \
        FAIL() << "CUTRAIN_REQUIRE_GPU=1 but no GPU is usable: "              \
               << ::cutrain::cuda_status().reason;                            \
      GTEST_SKIP() << "no usable GPU: " << ::cutrain::cuda_status().reason;   \
    }                                                                         \
  } while (0)

// Cases for several GPUs skip, with the reason, on a machine with fewer (CUTRAIN_REQUIRE_GPU=1
// does not turn that into a failure: the GPU check runs on whatever machine it is lent).
#define CUTRAIN_REQUIRE_GPUS(n)                                     \
  do {                                                              \
    CUTRAIN_REQUIRE_GPU();                                          \
    if (::cutrain::cuda_status().device_count < (n))                \
      GTEST_SKIP() << "needs " << (n) << " GPUs; this machine has " \
                   << ::cutrain::cuda_status().device_count;        \
  } while (0)
