#pragma once
// Note [implicit GEMM on the CPU]: a stride-1 convolution needs no im2col. Pad each input plane
// to Hp x Wp (Wp = W + 2 pw) and compute the output on the padded grid q = oh Wp + ow (ow < Wp;
// the Wp - Wo extra columns are computed and dropped): then row k = (ci, i, j) of the im2col
// matrix is the padded plane ci read from offset i dh Wp + j dw - a pointer, not a copy. With one
// kernel, C = A B for A and B given as row pointers (gemm_rows):
//   forward  Y [Co, Ho Wp]  = W [Co, K] x rows_x [K, Ho Wp]
//   dW^T     dW^T [K, Co]   = rows_x [K, Ho Wp] x dY^T [Ho Wp, Co]  (zeros in the extra columns)
//   dX       the forward form over dY padded by (k - 1) d - p, with the kernel flipped and its
//            in/out channels swapped (a stride-1 convolution's transpose is one).
// Each output element is one chain of fused multiply-adds in ascending depth, whatever the tile:
// the tiling, the vector width and the thread count change no bit, and the scalar loop
// (CUTRAIN_CONV_SCALAR, or a CPU without AVX-512) gives the AVX-512 kernel's bits. Against
// im2col + OpenBLAS it drops the lowering (the rows are the padded plane, 9x smaller, in L1/L2)
// and the packing of GEMMs with 32-64 rows: bench/RESULTS.md, Convolutions.

#include <cstddef>
#include <cstdint>

#include "kernels/nn/conv.cuh"

namespace cutrain::nn::backend::direct {

/// The implicit GEMM covers stride 1 (any kernel, padding <= the kernel's reach, dilation).
bool applies(const rules::ConvGeometry& g);
/// Floats of per-thread scratch for one sample.
std::size_t scratch_floats(const rules::ConvGeometry& g);
/// Floats of the flipped, transposed kernel the backward builds once per call.
std::size_t flipped_floats(const rules::ConvGeometry& g);

/// y [Co, Ho, Wo] (+ bias, nullable) of one sample x [C, H, W], stored as `store` says (Note
/// [16-bit stores], kernels/common/half.cuh; dx below likewise).
void forward_sample(const rules::ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y, float* scratch, rules::Store store);
/// wt [C, Co kh kw] from w [Co, C, kh, kw]: the kernel of the transposed convolution (dX).
void flip_kernel(const rules::ConvGeometry& g, const float* w, float* wt);
/// dw_t [K, Co] = (accumulate ? dw_t : 0) + this sample's dW, transposed; dx [C, H, W]
/// (nullable) of one sample.
void backward_sample(const rules::ConvGeometry& g, const float* x, const float* dy, const float* wt,
                     float* dw_t, bool accumulate, float* dx, float* scratch, rules::Store store);

/// The kernel, exposed for its tests: C [M, N] (ldc) = (accumulate ? C : 0) + A x B, row i of A
/// at a[i] (K floats), row p of B at b[p] (N floats).
void gemm_rows(std::int64_t m, std::int64_t n, std::int64_t k, const float* const* a,
               const float* const* b, float* c, std::int64_t ldc, bool accumulate,
               bool vector = true);

}  // namespace cutrain::nn::backend::direct
