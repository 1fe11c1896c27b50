// CPU twins and CUDA dispatch of the convolution family (see conv_backend.hpp). The CPU loops
// call the rules per element as the kernels do, so both backends give the same bits for
// everything but the GEMMs.
#include "src/nn/conv_backend.hpp"

#include <algorithm>
#include <vector>

#include "cutrain/error.hpp"
#include "kernels/nn/channel.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/nn/channel_cpu.hpp"
#include "src/nn/conv_direct_cpu.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/nn/conv.hpp"
#endif

namespace cutrain::nn::backend {
namespace {

#define CUTRAIN_CONV_DISPATCH(cpu_body, cuda_call) \
  if (e.device.is_cpu()) {                         \
    cpu_body;                                      \
  } else {                                         \
    CUTRAIN_ON_CUDA(cuda_call);                    \
  }

std::size_t sz(std::int64_t n) {
  return static_cast<std::size_t>(n);
}

}  // namespace

void im2col(const Exec& e, const rules::ConvGeometry& g, const float* x, std::int64_t nb,
            float* col) {
  // The CPU walks rows of one sample (k, n): contiguous writes, no division per element.
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(g.k() * nb),
                                           [=](std::size_t r) {
                                             const auto k = static_cast<std::int64_t>(r) / nb;
                                             const auto n = static_cast<std::int64_t>(r) % nb;
                                             rules::im2col_row(g, x, n, k,
                                                               col + k * nb * g.p() + n * g.p());
                                           }),
                        kernels::launch_im2col(g, x, nb, col, e.stream))
}

void col2im(const Exec& e, const rules::ConvGeometry& g, const float* dcol, std::int64_t nb,
            float* dx, rules::Store store) {
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(nb * g.c),
                                           [=](std::size_t r) {
                                             const auto n = static_cast<std::int64_t>(r) / g.c;
                                             const auto c = static_cast<std::int64_t>(r) % g.c;
                                             rules::col2im_plane(
                                                 g, dcol, nb, n, c,
                                                 dx + static_cast<std::int64_t>(r) * g.in_plane(),
                                                 store);
                                           }),
                        kernels::launch_col2im(g, dcol, nb, dx, store, e.stream))
}

namespace {
constexpr std::int64_t kCpuGroups = 16;
std::int64_t cpu_groups(std::int64_t batch) {
  return std::clamp<std::int64_t>(batch, 1, kCpuGroups);
}
// Group gi of `groups` covers samples [first(gi), first(gi + 1)): a split by the batch alone.
std::int64_t group_first(std::int64_t gi, std::int64_t groups, std::int64_t batch) {
  return gi * batch / groups;
}
}  // namespace

// Per group: the lowering's col [K, P] or the implicit GEMM's scratch (Note [implicit GEMM on
// the CPU]); then dW's per-group partials and the flipped kernel.
std::int64_t group_floats(const rules::ConvGeometry& g) {
  return direct::applies(g) ? static_cast<std::int64_t>(direct::scratch_floats(g)) : g.k() * g.p();
}

std::size_t conv_cpu_workspace_floats(const rules::ConvGeometry& g, std::int64_t batch) {
  return sz(cpu_groups(batch) * (group_floats(g) + g.co * g.k())) + direct::flipped_floats(g);
}

// The chunk functions with nb = 1. Inside a group's thread the GEMMs are serial (OpenBLAS in an
// OpenMP region) and so are the chunk functions' loops (nested regions get one thread).
void conv_forward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x,
                      std::int64_t batch, const float* w, const float* bias, float* y,
                      float* workspace, rules::Store store) {
  const std::int64_t groups = cpu_groups(batch);
  const bool implicit = direct::applies(g);
  cpu::parallel_rows(sz(groups), [=, &e](std::size_t r) {
    const auto gi = static_cast<std::int64_t>(r);
    float* col = workspace + gi * group_floats(g);
    for (std::int64_t n = group_first(gi, groups, batch); n < group_first(gi + 1, groups, batch);
         ++n) {
      if (implicit) {
        direct::forward_sample(g, x + n * g.c * g.in_plane(), w, bias, y + n * g.co * g.p(), col,
                               store);
        continue;
      }
      im2col(e, g, x + n * g.c * g.in_plane(), 1, col);
      float* yn = y + n * g.co * g.p();  // [Co, P]: the GEMM's output is the NCHW plane
      gemm(e, false, false, g.co, g.p(), g.k(), 1.0F, w, g.k(), col, g.p(), 0.0F, yn, g.p());
      // In place: + bias, the store's rounding.
      if (bias != nullptr || store != rules::Store::kExact)
        gemm_to_nchw(e, g, yn, 1, bias, yn, store);
    }
  });
}

void conv_backward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x, const float* dy,
                       std::int64_t batch, const float* w, float* dw, float* dx, float* workspace,
                       rules::Store store) {
  const std::int64_t groups = cpu_groups(batch), weights = g.co * g.k();
  float* partial = workspace + groups * group_floats(g);  // [groups, Co K]
  float* flipped = partial + groups * weights;            // [C, Co kh kw]
  const bool implicit = direct::applies(g);
  if (implicit && dx != nullptr) direct::flip_kernel(g, w, flipped);
  cpu::parallel_rows(sz(groups), [=, &e](std::size_t r) {
    const auto gi = static_cast<std::int64_t>(r);
    float* col = workspace + gi * group_floats(g);
    const std::int64_t first = group_first(gi, groups, batch);
    for (std::int64_t n = first; n < group_first(gi + 1, groups, batch); ++n) {
      const float* dyn = dy + n * g.co * g.p();
      if (implicit) {
        direct::backward_sample(g, x + n * g.c * g.in_plane(), dyn, flipped, partial + gi * weights,
                                n != first, dx != nullptr ? dx + n * g.c * g.in_plane() : nullptr,
                                col, store);
        continue;
      }
      im2col(e, g, x + n * g.c * g.in_plane(), 1, col);
      gemm(e, false, true, g.co, g.k(), g.p(), 1.0F, dyn, g.p(), col, g.p(),
           n == first ? 0.0F : 1.0F, partial + gi * weights, g.k());
      if (dx == nullptr) continue;
      gemm(e, true, false, g.k(), g.p(), g.co, 1.0F, w, g.k(), dyn, g.p(), 0.0F, col, g.p());
      col2im(e, g, col, 1, dx + n * g.c * g.in_plane(), store);
    }
  });
  // Every group holds at least one sample (groups <= batch): the sums in group order. The
  // implicit GEMM's partials are dW transposed, [K, Co].
  cpu::parallel_for(sz(weights), [=](std::size_t i) {
    const auto at = static_cast<std::int64_t>(i);
    const std::int64_t from = implicit ? (at % g.k()) * g.co + at / g.k() : at;
    float s = partial[from];
    for (std::int64_t gi = 1; gi < groups; ++gi) s += partial[gi * weights + from];
    dw[i] = s;
  });
}

void gemm_to_nchw(const Exec& e, const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                  const float* bias, float* y, rules::Store store) {
  // Plane (n, co) of y is the contiguous slice [n P, n P + P) of ycol's row co.
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(nb * g.co),
                                           [=](std::size_t r) {
                                             const auto n = static_cast<std::int64_t>(r) / g.co;
                                             const auto co = static_cast<std::int64_t>(r) % g.co;
                                             const float* in = ycol + co * nb * g.p() + n * g.p();
                                             float* out = y + static_cast<std::int64_t>(r) * g.p();
                                             rules::with_store(store, [&](auto s) {
                                               for (std::int64_t p = 0; p < g.p(); ++p)
                                                 out[p] = rules::stored(
                                                     s, bias != nullptr ? in[p] + bias[co] : in[p]);
                                             });
                                           }),
                        kernels::launch_gemm_to_nchw(g, ycol, nb, bias, y, store, e.stream))
}

void nchw_to_gemm(const Exec& e, const rules::ConvGeometry& g, const float* dy, std::int64_t nb,
                  float* dycol) {
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(nb * g.co),
                                           [=](std::size_t r) {
                                             const auto n = static_cast<std::int64_t>(r) / g.co;
                                             const auto co = static_cast<std::int64_t>(r) % g.co;
                                             const float* in =
                                                 dy + static_cast<std::int64_t>(r) * g.p();
                                             float* out = dycol + co * nb * g.p() + n * g.p();
                                             for (std::int64_t p = 0; p < g.p(); ++p)
                                               out[p] = in[p];
                                           }),
                        kernels::launch_nchw_to_gemm(g, dy, nb, dycol, e.stream))
}

void channel_sum(const Exec& e, const float* x, std::int64_t n, std::int64_t channels,
                 std::int64_t plane, float* out, [[maybe_unused]] double* scratch) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_rows(sz(channels), sz(v.count),
                         [=](std::size_t c) {
                           const float* xc = x + v.base(static_cast<std::int64_t>(c));
                           out[c] = static_cast<float>(detail::lane_sum(
                               v, [&](std::int64_t at) { return double{xc[at]}; }));
                         }),
      kernels::launch_channel_sum(x, n, channels, plane, out, scratch, e.stream))
}

void pool_forward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                  const float* x, float* y, std::int32_t* index) {
  CUTRAIN_CHECK(kind != rules::Pool::kMax || index != nullptr,
                "max pooling needs its index workspace");
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(n * g.c),
                                           [=](std::size_t r) {
                                             const auto nc = static_cast<std::int64_t>(r);
                                             rules::pool_plane(
                                                 kind, g, x + nc * g.in_plane(), y + nc * g.p(),
                                                 index ? index + nc * g.p() : nullptr);
                                           }),
                        kernels::launch_pool_forward(kind, g, n, x, y, index, e.stream))
}

void pool_backward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                   const float* dy, const std::int32_t* index, float* dx) {
  CUTRAIN_CHECK(kind != rules::Pool::kMax || index != nullptr,
                "max pooling needs its index workspace");
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(n * g.c),
                                           [=](std::size_t r) {
                                             const auto nc = static_cast<std::int64_t>(r);
                                             rules::pool_grad_plane(
                                                 kind, g, dy + nc * g.p(),
                                                 index ? index + nc * g.p() : nullptr,
                                                 dx + nc * g.in_plane());
                                           }),
                        kernels::launch_pool_backward(kind, g, n, dy, index, dx, e.stream))
}

}  // namespace cutrain::nn::backend
