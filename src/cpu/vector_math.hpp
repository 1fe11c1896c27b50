#pragma once
// Note [vector math]: the CPU layer loops call erff, expf and tanhf (GELU, sigmoid, tanh in
// kernels/nn/activation.cuh; expf in softmax cross-entropy) once per element, and g++ will not
// vectorize a loop around a scalar libm call: GELU forward + backward ran at 2.9% of the
// same-bytes copy, 30x ReLU.
// glibc's libmvec has SIMD versions of exactly these (_ZGVeN16v_erff, ...), which g++ calls
// from an `omp simd` loop once the function is declared `simd` - as <math.h> itself declares
// them, but only under -ffast-math, whose other licences (reassociation, no NaNs) cutrain does
// not take. So the three are declared here with the attribute alone; CMake enables it where the
// probe links (x86-64, glibc 2.35+; CUTRAIN_WITH_LIBMVEC). The results stay deterministic (a
// given size takes the same vector and scalar paths every time); the CPU and GPU already differ
// in the last bits of transcendentals, and the layer goldens hold both to PyTorch.
#include <math.h>  // NOLINT(modernize-deprecated-headers): the C declarations being extended

// g++ only: clang neither knows the attribute nor calls libmvec without -fveclib.
#if CUTRAIN_WITH_LIBMVEC && defined(__GNUC__) && !defined(__clang__)
extern "C" {
__attribute__((simd("notinbranch"))) float erff(float) noexcept;
__attribute__((simd("notinbranch"))) float expf(float) noexcept;
__attribute__((simd("notinbranch"))) float tanhf(float) noexcept;
}
#endif
