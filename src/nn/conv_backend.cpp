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
#include "src/nn/conv_depthwise_cpu.hpp"
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
constexpr std::int64_t kCpuParts = 16;
std::int64_t cpu_parts(std::int64_t batch) {
  return std::clamp<std::int64_t>(batch, 1, kCpuParts);
}
// Part pi of `parts` covers samples [first(pi), first(pi + 1)): a split by the batch alone.
std::int64_t part_first(std::int64_t pi, std::int64_t parts, std::int64_t batch) {
  return pi * batch / parts;
}

// Where group i of sample n lies (Note [grouped convolution]): its channel slices of x, y (and
// dx, dy) are contiguous within the sample, its filters a block of W's rows.
struct GroupSlices {
  rules::ConvGeometry one;  // the group as a convolution of its own
  std::int64_t x_sample, y_sample, x_step, y_step, w_step;
  explicit GroupSlices(const rules::ConvGeometry& g)
      : one(rules::one_group(g)),
        x_sample(g.c * g.in_plane()),
        y_sample(g.co * g.p()),
        x_step(one.c * g.in_plane()),
        y_step(one.co * g.p()),
        w_step(one.co * one.k()) {}
  std::int64_t x_at(std::int64_t n, std::int64_t i) const { return n * x_sample + i * x_step; }
  std::int64_t y_at(std::int64_t n, std::int64_t i) const { return n * y_sample + i * y_step; }
};

// How the CPU runs a convolution: a depthwise pass over a sample's channels (Note [depthwise
// convolution on the CPU]), else per group of a sample an implicit GEMM (stride 1) or a lowering.
enum class Path : std::uint8_t { kDepthwise, kImplicit, kLowering };
Path path_of(const rules::ConvGeometry& g) {
  if (depthwise::applies(g)) return Path::kDepthwise;
  return direct::applies(rules::one_group(g)) ? Path::kImplicit : Path::kLowering;
}

// Per part: the depthwise pass's scratch, or the lowering's col [K, P] or the implicit GEMM's
// scratch (Note [implicit GEMM on the CPU]) for one group of one sample; then dW's per-part
// partials and the flipped kernels.
std::int64_t part_floats(const rules::ConvGeometry& g) {
  const rules::ConvGeometry one = rules::one_group(g);
  switch (path_of(g)) {
    case Path::kDepthwise:
      return static_cast<std::int64_t>(depthwise::scratch_floats(g));
    case Path::kImplicit:
      return static_cast<std::int64_t>(direct::scratch_floats(one));
    case Path::kLowering:
      break;
  }
  return one.k() * one.p();
}
}  // namespace

std::size_t conv_cpu_workspace_floats(const rules::ConvGeometry& g, std::int64_t batch) {
  return sz(cpu_parts(batch) * (part_floats(g) + g.co * g.kg())) +
         sz(g.groups) * direct::flipped_floats(rules::one_group(g));
}

// The chunk functions with nb = 1, per group. Inside a part's thread the GEMMs are serial
// (OpenBLAS in an OpenMP region) and so are the chunk functions' loops (nested regions get one
// thread).
void conv_forward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x,
                      std::int64_t batch, const float* w, const float* bias, float* y,
                      float* workspace, rules::Store store) {
  const std::int64_t parts = cpu_parts(batch);
  const GroupSlices s(g);
  const rules::ConvGeometry& one = s.one;
  const Path path = path_of(g);
  const bool implicit = path == Path::kImplicit;
  cpu::parallel_rows(sz(parts), [=, &e](std::size_t r) {
    const auto pi = static_cast<std::int64_t>(r);
    float* col = workspace + pi * part_floats(g);
    for (std::int64_t n = part_first(pi, parts, batch); n < part_first(pi + 1, parts, batch); ++n) {
      if (path == Path::kDepthwise) {
        depthwise::forward_sample(g, x + s.x_at(n, 0), w, bias, y + s.y_at(n, 0), col, store);
        continue;
      }
      for (std::int64_t i = 0; i < g.groups; ++i) {
        const float* xs = x + s.x_at(n, i);
        const float* wi = w + i * s.w_step;
        const float* bi = bias != nullptr ? bias + i * one.co : nullptr;
        float* ys = y + s.y_at(n, i);  // [Co/G, P]: the GEMM's output is the NCHW planes
        if (implicit) {
          direct::forward_sample(one, xs, wi, bi, ys, col, store);
          continue;
        }
        im2col(e, one, xs, 1, col);
        gemm(e, false, false, one.co, one.p(), one.k(), 1.0F, wi, one.k(), col, one.p(), 0.0F, ys,
             one.p());
        // In place: + bias, the store's rounding.
        if (bi != nullptr || store != rules::Store::kExact)
          gemm_to_nchw(e, one, ys, 1, bi, ys, store);
      }
    }
  });
}

void conv_backward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x, const float* dy,
                       std::int64_t batch, const float* w, float* dw, float* dx, float* workspace,
                       rules::Store store) {
  const std::int64_t parts = cpu_parts(batch), weights = g.co * g.kg();
  const GroupSlices s(g);
  const rules::ConvGeometry& one = s.one;
  const auto flips = static_cast<std::int64_t>(direct::flipped_floats(one));
  float* partial = workspace + parts * part_floats(g);  // [parts, Co kg]
  float* flipped = partial + parts * weights;           // per group [C/G, Co/G kh kw]
  const Path path = path_of(g);
  const bool implicit = path == Path::kImplicit;
  if (implicit && dx != nullptr)
    for (std::int64_t i = 0; i < g.groups; ++i)
      direct::flip_kernel(one, w + i * s.w_step, flipped + i * flips);
  cpu::parallel_rows(sz(parts), [=, &e](std::size_t r) {
    const auto pi = static_cast<std::int64_t>(r);
    float* col = workspace + pi * part_floats(g);
    const std::int64_t first = part_first(pi, parts, batch);
    for (std::int64_t n = first; n < part_first(pi + 1, parts, batch); ++n) {
      if (path == Path::kDepthwise) {  // dW [Co, kh kw]: not transposed
        depthwise::backward_sample(g, x + s.x_at(n, 0), dy + s.y_at(n, 0), w,
                                   partial + pi * weights, n != first,
                                   dx != nullptr ? dx + s.x_at(n, 0) : nullptr, col, store);
        continue;
      }
      for (std::int64_t i = 0; i < g.groups; ++i) {
        const float* xs = x + s.x_at(n, i);
        const float* dys = dy + s.y_at(n, i);
        float* dxs = dx != nullptr ? dx + s.x_at(n, i) : nullptr;
        float* part = partial + pi * weights + i * s.w_step;  // the group's block of dW
        if (implicit) {
          direct::backward_sample(one, xs, dys, flipped + i * flips, part, n != first, dxs, col,
                                  store);
          continue;
        }
        im2col(e, one, xs, 1, col);
        gemm(e, false, true, one.co, one.k(), one.p(), 1.0F, dys, one.p(), col, one.p(),
             n == first ? 0.0F : 1.0F, part, one.k());
        if (dxs == nullptr) continue;
        gemm(e, true, false, one.k(), one.p(), one.co, 1.0F, w + i * s.w_step, one.k(), dys,
             one.p(), 0.0F, col, one.p());
        col2im(e, one, col, 1, dxs, store);
      }
    }
  });
  // Every part holds at least one sample (parts <= batch): the sums in part order. The implicit
  // GEMM's partials are each group's block of dW transposed, [kg, Co/G].
  cpu::parallel_for(sz(weights), [=](std::size_t at) {
    const auto i = static_cast<std::int64_t>(at);
    const std::int64_t block = i / s.w_step * s.w_step, in = i - block;
    const std::int64_t from = implicit ? block + (in % one.k()) * one.co + in / one.k() : i;
    float sum = partial[from];
    for (std::int64_t pi = 1; pi < parts; ++pi) sum += partial[pi * weights + from];
    dw[at] = sum;
  });
}

// Per chunk: col = im2col(x), Y_i = W_i col_i per group, y = Y as NCHW + b.
void conv_forward_chunks(const Exec& e, const rules::ConvGeometry& g, std::int64_t nb,
                         const float* x, std::int64_t batch, const float* w, const float* bias,
                         float* y, float* workspace, rules::Store store) {
  const rules::ConvGeometry one = rules::one_group(g);
  float* col = workspace;
  float* ycol = col + nb * g.p() * g.k();
  for (std::int64_t n0 = 0; n0 < batch; n0 += nb) {
    const std::int64_t m = std::min(nb, batch - n0), cols = m * g.p();
    im2col(e, g, x + n0 * g.c * g.in_plane(), m, col);
    gemm_strided(e, false, false, one.co, cols, one.k(), 1.0F, w, one.k(), one.co * one.k(), col,
                 cols, one.k() * cols, 0.0F, ycol, cols, one.co * cols, g.groups);
    gemm_to_nchw(e, g, ycol, m, bias, y + n0 * g.co * g.p(), store);
  }
}

// Per chunk: dY = dy in GEMM order; per group dW_i (+)= dY_i col_i^T (chunks in order), dcol_i =
// W_i^T dY_i; dx = col2im(dcol).
void conv_backward_chunks(const Exec& e, const rules::ConvGeometry& g, std::int64_t nb,
                          const float* x, const float* dy, std::int64_t batch, const float* w,
                          float* dw, float* dx, float* workspace, rules::Store store) {
  const rules::ConvGeometry one = rules::one_group(g);
  const std::int64_t w_step = one.co * one.k();
  float* col = workspace;
  float* dycol = col + nb * g.p() * g.k();
  for (std::int64_t n0 = 0; n0 < batch; n0 += nb) {
    const std::int64_t m = std::min(nb, batch - n0), cols = m * g.p();
    im2col(e, g, x + n0 * g.c * g.in_plane(), m, col);
    nchw_to_gemm(e, g, dy + n0 * g.co * g.p(), m, dycol);
    gemm_strided(e, false, true, one.co, one.k(), cols, 1.0F, dycol, cols, one.co * cols, col, cols,
                 one.k() * cols, n0 == 0 ? 0.0F : 1.0F, dw, one.k(), w_step, g.groups);
    if (dx == nullptr) continue;
    // dcol_i overwrites col_i, which the GEMMs above have read.
    gemm_strided(e, true, false, one.k(), cols, one.co, 1.0F, w, one.k(), w_step, dycol, cols,
                 one.co * cols, 0.0F, col, cols, one.k() * cols, g.groups);
    col2im(e, g, col, m, dx + n0 * g.c * g.in_plane(), store);
  }
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
