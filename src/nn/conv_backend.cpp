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

// Note [channel sums in lanes], the CPU side: one pass over the channel in ascending j, value j
// added into lane j % T - per lane the additions the GPU thread of that lane makes, in its order.
// Calls f(j, offset of value j) for a channel's values in ascending j, with no division per
// value (ChannelView::at's, which the GPU lanes pay, done by the loop nest here).
template <class F>
void for_channel(const rules::ChannelView& v, const F& f) {
  std::int64_t j = 0;
  for (std::int64_t base = 0; j < v.count; base += v.stride)
    for (std::int64_t p = 0; p < v.plane; ++p, ++j) f(j, base + p);
}

// for_channel's order cut into runs of consecutive j that map to consecutive lanes (no wrap
// within a run): body(first lane, offset of the run's first value, run length). A run's
// additions into lanes [lane, lane + run) vectorize and are, per lane, the same additions in the
// same order as one value at a time (and as the GPU lanes make).
template <class Body>
void for_lane_runs(const rules::ChannelView& v, const Body& body) {
  const std::int64_t lanes = v.lanes();
  std::int64_t j = 0;
  for (std::int64_t base = 0; j < v.count; base += v.stride)
    for (std::int64_t p = 0; p < v.plane;) {
      const std::int64_t lane = j % lanes;
      const std::int64_t run = std::min(v.plane - p, lanes - lane);
      body(lane, base + p, run);
      p += run;
      j += run;
    }
}

// The T lanes' total: each segment's L lanes in lane order, then the segments in order.
double combine(const rules::ChannelView& v, const double* lanes) {
  double partials[rules::kMaxChannelSegments] = {};
  for (std::int64_t s = 0; s < v.segments; ++s)
    partials[s] = rules::combine_lanes(lanes + s * rules::kChannelLanes);
  return rules::combine_segments(partials, v.segments);
}

template <class Value>  // value(offset)
double lane_sum(const rules::ChannelView& v, const Value& value) {
  std::vector<double> lanes(static_cast<std::size_t>(v.lanes()), 0.0);
  for_lane_runs(v, [&](std::int64_t lane, std::int64_t at, std::int64_t run) {
    double* l = lanes.data() + lane;
#pragma omp simd
    for (std::int64_t t = 0; t < run; ++t) l[t] += value(at + t);
  });
  return combine(v, lanes.data());
}

// BatchNorm2d's backward sums in one pass: of dy and of dy x-hat (dy below the fused ReLU when
// relu_y is given), lane_sum's lanes. Both loops vectorize: the ReLU is a template argument, and
// the gradient below it goes through a small buffer, for GCC leaves a loop scalar when the
// select feeds a float-to-double conversion (which it will not speculate) - as it was, 4x
// BatchNorm's forward and a fifth of the default CNN's CPU step. The additions are the same.
template <bool kRelu>
void batchnorm_backward_sums(const rules::ChannelView& v, const float* x, const float* relu_y,
                             const float* dy, float mean, float invstd, double& sum_dy,
                             double& sum_dy_xhat) {
  std::vector<double> la(static_cast<std::size_t>(v.lanes()), 0.0), lb(la.size(), 0.0);
  float g[rules::kChannelLanes];
  for_lane_runs(v, [&](std::int64_t lane, std::int64_t at, std::int64_t run) {
    for (std::int64_t t0 = 0; t0 < run; t0 += rules::kChannelLanes) {
      const std::int64_t m = std::min<std::int64_t>(run - t0, rules::kChannelLanes);
      const std::int64_t first = at + t0;
#pragma omp simd
      for (std::int64_t t = 0; t < m; ++t)
        g[t] = rules::bn_upstream_of<kRelu>(relu_y, dy, first + t);
      double* __restrict__ pa = la.data() + lane + t0;
      double* __restrict__ pb = lb.data() + lane + t0;
      const float* xr = x + first;
#pragma omp simd
      for (std::int64_t t = 0; t < m; ++t) {
        pa[t] += g[t];
        pb[t] += rules::bn_dy_xhat(xr, g[t], t, mean, invstd);
      }
    }
  });
  sum_dy = combine(v, la.data());
  sum_dy_xhat = combine(v, lb.data());
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
            float* dx) {
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(nb * g.c),
                                           [=](std::size_t r) {
                                             const auto n = static_cast<std::int64_t>(r) / g.c;
                                             const auto c = static_cast<std::int64_t>(r) % g.c;
                                             rules::col2im_plane(
                                                 g, dcol, nb, n, c,
                                                 dx + static_cast<std::int64_t>(r) * g.in_plane());
                                           }),
                        kernels::launch_col2im(g, dcol, nb, dx, e.stream))
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
                      float* workspace) {
  const std::int64_t groups = cpu_groups(batch);
  const bool implicit = direct::applies(g);
  cpu::parallel_rows(sz(groups), [=, &e](std::size_t r) {
    const auto gi = static_cast<std::int64_t>(r);
    float* col = workspace + gi * group_floats(g);
    for (std::int64_t n = group_first(gi, groups, batch); n < group_first(gi + 1, groups, batch);
         ++n) {
      if (implicit) {
        direct::forward_sample(g, x + n * g.c * g.in_plane(), w, bias, y + n * g.co * g.p(), col);
        continue;
      }
      im2col(e, g, x + n * g.c * g.in_plane(), 1, col);
      float* yn = y + n * g.co * g.p();  // [Co, P]: the GEMM's output is the NCHW plane
      gemm(e, false, false, g.co, g.p(), g.k(), 1.0F, w, g.k(), col, g.p(), 0.0F, yn, g.p());
      if (bias != nullptr) gemm_to_nchw(e, g, yn, 1, bias, yn);  // in place: + bias
    }
  });
}

void conv_backward_cpu(const Exec& e, const rules::ConvGeometry& g, const float* x, const float* dy,
                       std::int64_t batch, const float* w, float* dw, float* dx, float* workspace) {
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
                                col);
        continue;
      }
      im2col(e, g, x + n * g.c * g.in_plane(), 1, col);
      gemm(e, false, true, g.co, g.k(), g.p(), 1.0F, dyn, g.p(), col, g.p(),
           n == first ? 0.0F : 1.0F, partial + gi * weights, g.k());
      if (dx == nullptr) continue;
      gemm(e, true, false, g.k(), g.p(), g.co, 1.0F, w, g.k(), dyn, g.p(), 0.0F, col, g.p());
      col2im(e, g, col, 1, dx + n * g.c * g.in_plane());
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
                  const float* bias, float* y) {
  // Plane (n, co) of y is the contiguous slice [n P, n P + P) of ycol's row co.
  CUTRAIN_CONV_DISPATCH(cpu::parallel_rows(sz(nb * g.co),
                                           [=](std::size_t r) {
                                             const auto n = static_cast<std::int64_t>(r) / g.co;
                                             const auto co = static_cast<std::int64_t>(r) % g.co;
                                             const float* in = ycol + co * nb * g.p() + n * g.p();
                                             float* out = y + static_cast<std::int64_t>(r) * g.p();
                                             for (std::int64_t p = 0; p < g.p(); ++p)
                                               out[p] = bias != nullptr ? in[p] + bias[co] : in[p];
                                           }),
                        kernels::launch_gemm_to_nchw(g, ycol, nb, bias, y, e.stream))
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
      cpu::parallel_for(sz(channels),
                        [=](std::size_t c) {
                          const float* xc = x + v.base(static_cast<std::int64_t>(c));
                          out[c] = static_cast<float>(
                              lane_sum(v, [&](std::int64_t at) { return double{xc[at]}; }));
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

void batchnorm_train(const Exec& e, const float* x, float* y, std::int64_t n, std::int64_t channels,
                     std::int64_t plane, const float* gamma, const float* beta, float eps,
                     float momentum, float* running_mean, float* running_var, float* save_mean,
                     float* save_invstd, bool relu, [[maybe_unused]] double* scratch) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(
          sz(channels),
          [=](std::size_t ci) {
            const auto c = static_cast<std::int64_t>(ci);
            const float* xc = x + v.base(c);
            float* yc = y + v.base(c);
            const double count = static_cast<double>(v.count);
            const double mean =
                lane_sum(v, [&](std::int64_t at) { return double{xc[at]}; }) / count;
            const double var =
                lane_sum(v, [&](std::int64_t at) { return rules::bn_square_dev(xc, at, mean); }) /
                count;
            rules::batchnorm_finish(mean, var, v.count, eps, momentum, running_mean + c,
                                    running_var + c, save_mean + c, save_invstd + c);
            const float g = gamma ? gamma[c] : 1.0F, b = beta ? beta[c] : 0.0F;
            const float m = save_mean[c], is = save_invstd[c];
            for_channel(v, [&](std::int64_t, std::int64_t at) {
              yc[at] = rules::bn_output(rules::batchnorm_apply(xc[at], m, is, g, b), relu);
            });
          }),
      kernels::launch_batchnorm_train(x, y, n, channels, plane, gamma, beta, eps, momentum,
                                      running_mean, running_var, save_mean, save_invstd, relu,
                                      scratch, e.stream))
}

void batchnorm_eval(const Exec& e, const float* x, float* y, std::int64_t n, std::int64_t channels,
                    std::int64_t plane, const float* gamma, const float* beta, float eps,
                    const float* running_mean, const float* running_var, bool relu) {
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_rows(sz(n * channels),
                         [=](std::size_t r) {
                           const auto c = static_cast<std::int64_t>(r) % channels;
                           const float invstd = rules::batchnorm_invstd(running_var[c], eps);
                           const float g = gamma ? gamma[c] : 1.0F, b = beta ? beta[c] : 0.0F;
                           const std::int64_t at = static_cast<std::int64_t>(r) * plane;
                           for (std::int64_t p = 0; p < plane; ++p)
                             y[at + p] = rules::bn_output(
                                 rules::batchnorm_apply(x[at + p], running_mean[c], invstd, g, b),
                                 relu);
                         }),
      kernels::launch_batchnorm_eval(x, y, n, channels, plane, gamma, beta, eps, running_mean,
                                     running_var, relu, e.stream))
}

void batchnorm_backward(const Exec& e, const float* x, const float* relu_y, const float* dy,
                        float* dx, std::int64_t n, std::int64_t channels, std::int64_t plane,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dgamma, float* dbeta, [[maybe_unused]] double* scratch) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(sz(channels),
                        [=](std::size_t ci) {
                          const auto c = static_cast<std::int64_t>(ci);
                          const float* xc = x + v.base(c);
                          const float* dyc = dy + v.base(c);
                          const float* yc = relu_y != nullptr ? relu_y + v.base(c) : nullptr;
                          const float mean = save_mean[c], invstd = save_invstd[c];
                          double sum_dy = 0.0, sum_dy_xhat = 0.0;
                          if (yc != nullptr) {
                            batchnorm_backward_sums<true>(v, xc, yc, dyc, mean, invstd, sum_dy,
                                                          sum_dy_xhat);
                          } else {
                            batchnorm_backward_sums<false>(v, xc, nullptr, dyc, mean, invstd,
                                                           sum_dy, sum_dy_xhat);
                          }
                          if (dgamma != nullptr) dgamma[c] = static_cast<float>(sum_dy_xhat);
                          if (dbeta != nullptr) dbeta[c] = static_cast<float>(sum_dy);
                          if (dx == nullptr) return;
                          float* dxc = dx + v.base(c);
                          const auto count = static_cast<float>(v.count);
                          const float k = rules::batchnorm_grad_scale(gamma, c, invstd, count);
                          for_channel(v, [&](std::int64_t, std::int64_t at) {
                            dxc[at] = rules::batchnorm_input_grad(
                                xc[at], rules::bn_upstream(yc, dyc, at), mean, invstd, k, count,
                                static_cast<float>(sum_dy), static_cast<float>(sum_dy_xhat));
                          });
                        }),
      kernels::launch_batchnorm_backward(x, relu_y, dy, dx, n, channels, plane, gamma, save_mean,
                                         save_invstd, dgamma, dbeta, scratch, e.stream))
}

}  // namespace cutrain::nn::backend
