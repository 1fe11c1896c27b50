// CPU twins and CUDA dispatch of the convolution family (see conv_backend.hpp). The CPU loops
// call the rules per element as the kernels do, so both backends give the same bits for
// everything but the GEMMs.
#include "src/nn/conv_backend.hpp"

#include "kernels/nn/channel.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
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
// added into lane j % L - per lane the additions the GPU thread of that lane makes, in its order.
template <class Value>
double lane_sum(std::int64_t count, const Value& value) {
  double lanes[rules::kChannelLanes] = {};
  for (std::int64_t j = 0; j < count; ++j) lanes[j % rules::kChannelLanes] += value(j);
  return rules::combine_lanes(lanes);
}

}  // namespace

void im2col(const Exec& e, const rules::ConvGeometry& g, const float* x, std::int64_t nb,
            float* col) {
  const std::int64_t n = g.k() * nb * g.p();
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(sz(n), [=](std::size_t i) {
        col[i] = rules::im2col_value(g, x, nb, static_cast<std::int64_t>(i));
      }),
      kernels::launch_im2col(g, x, nb, col, e.stream))
}

void col2im(const Exec& e, const rules::ConvGeometry& g, const float* dcol, std::int64_t nb,
            float* dx) {
  const std::int64_t n = nb * g.c * g.in_plane();
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(sz(n), [=](std::size_t i) {
        dx[i] = rules::col2im_value(g, dcol, nb, static_cast<std::int64_t>(i));
      }),
      kernels::launch_col2im(g, dcol, nb, dx, e.stream))
}

void gemm_to_nchw(const Exec& e, const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                  const float* bias, float* y) {
  const std::int64_t n = nb * g.co * g.p();
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(sz(n), [=](std::size_t i) {
        const auto k = static_cast<std::int64_t>(i);
        const float v = ycol[rules::gemm_index_of_nchw(g, nb, k)];
        y[i] = bias != nullptr ? v + bias[(k / g.p()) % g.co] : v;
      }),
      kernels::launch_gemm_to_nchw(g, ycol, nb, bias, y, e.stream))
}

void nchw_to_gemm(const Exec& e, const rules::ConvGeometry& g, const float* dy, std::int64_t nb,
                  float* dycol) {
  const std::int64_t n = nb * g.co * g.p();
  CUTRAIN_CONV_DISPATCH(cpu::parallel_for(sz(n),
                                          [=](std::size_t i) {
                                            dycol[rules::gemm_index_of_nchw(
                                                g, nb, static_cast<std::int64_t>(i))] = dy[i];
                                          }),
                        kernels::launch_nchw_to_gemm(g, dy, nb, dycol, e.stream))
}

void channel_sum(const Exec& e, const float* x, std::int64_t n, std::int64_t channels,
                 std::int64_t plane, float* out) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(sz(channels),
                        [=](std::size_t c) {
                          const float* xc = x + v.base(static_cast<std::int64_t>(c));
                          out[c] = static_cast<float>(lane_sum(
                              v.count, [&](std::int64_t j) { return rules::bn_value(xc, v, j); }));
                        }),
      kernels::launch_channel_sum(x, n, channels, plane, out, e.stream))
}

void pool_forward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                  const float* x, float* y, std::int32_t* index) {
  CUTRAIN_CONV_DISPATCH(cpu::parallel_for(sz(n * g.c * g.p()),
                                          [=](std::size_t o) {
                                            y[o] = rules::pool_value(
                                                kind, g, x, static_cast<std::int64_t>(o), index);
                                          }),
                        kernels::launch_pool_forward(kind, g, n, x, y, index, e.stream))
}

void pool_backward(const Exec& e, rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                   const float* dy, const std::int32_t* index, float* dx) {
  CUTRAIN_CONV_DISPATCH(cpu::parallel_for(sz(n * g.c * g.in_plane()),
                                          [=](std::size_t i) {
                                            dx[i] = rules::pool_grad(
                                                kind, g, dy, index, static_cast<std::int64_t>(i));
                                          }),
                        kernels::launch_pool_backward(kind, g, n, dy, index, dx, e.stream))
}

void batchnorm2d_train(const Exec& e, const float* x, float* y, std::int64_t n,
                       std::int64_t channels, std::int64_t plane, const float* gamma,
                       const float* beta, float eps, float momentum, float* running_mean,
                       float* running_var, float* save_mean, float* save_invstd) {
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
                lane_sum(v.count, [&](std::int64_t j) { return rules::bn_value(xc, v, j); }) /
                count;
            const double var = lane_sum(v.count,
                                        [&](std::int64_t j) {
                                          return rules::bn_square_dev(xc, v, j, mean);
                                        }) /
                               count;
            rules::batchnorm_finish(mean, var, v.count, eps, momentum, running_mean + c,
                                    running_var + c, save_mean + c, save_invstd + c);
            const float g = gamma ? gamma[c] : 1.0F, b = beta ? beta[c] : 0.0F;
            for (std::int64_t j = 0; j < v.count; ++j)
              yc[v.at(j)] = rules::batchnorm_apply(xc[v.at(j)], save_mean[c], save_invstd[c], g, b);
          }),
      kernels::launch_batchnorm2d_train(x, y, n, channels, plane, gamma, beta, eps, momentum,
                                        running_mean, running_var, save_mean, save_invstd,
                                        e.stream))
}

void batchnorm2d_eval(const Exec& e, const float* x, float* y, std::int64_t n,
                      std::int64_t channels, std::int64_t plane, const float* gamma,
                      const float* beta, float eps, const float* running_mean,
                      const float* running_var) {
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(sz(n * channels * plane),
                        [=](std::size_t i) {
                          const auto c = (static_cast<std::int64_t>(i) / plane) % channels;
                          y[i] = rules::batchnorm_apply(
                              x[i], running_mean[c], rules::batchnorm_invstd(running_var[c], eps),
                              gamma ? gamma[c] : 1.0F, beta ? beta[c] : 0.0F);
                        }),
      kernels::launch_batchnorm2d_eval(x, y, n, channels, plane, gamma, beta, eps, running_mean,
                                       running_var, e.stream))
}

void batchnorm2d_backward(const Exec& e, const float* x, const float* dy, float* dx,
                          std::int64_t n, std::int64_t channels, std::int64_t plane,
                          const float* gamma, const float* save_mean, const float* save_invstd,
                          float* dgamma, float* dbeta) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  CUTRAIN_CONV_DISPATCH(
      cpu::parallel_for(
          sz(channels),
          [=](std::size_t ci) {
            const auto c = static_cast<std::int64_t>(ci);
            const float* xc = x + v.base(c);
            const float* dyc = dy + v.base(c);
            const float mean = save_mean[c], invstd = save_invstd[c];
            double lanes_dy[rules::kChannelLanes] = {}, lanes_dx[rules::kChannelLanes] = {};
            for (std::int64_t j = 0; j < v.count; ++j) {
              lanes_dy[j % rules::kChannelLanes] += rules::bn_value(dyc, v, j);
              lanes_dx[j % rules::kChannelLanes] += rules::bn_dy_xhat(xc, dyc, v, j, mean, invstd);
            }
            const double sum_dy = rules::combine_lanes(lanes_dy);
            const double sum_dy_xhat = rules::combine_lanes(lanes_dx);
            if (dgamma != nullptr) dgamma[c] = static_cast<float>(sum_dy_xhat);
            if (dbeta != nullptr) dbeta[c] = static_cast<float>(sum_dy);
            if (dx == nullptr) return;
            float* dxc = dx + v.base(c);
            const auto count = static_cast<float>(v.count);
            const float k = (gamma ? gamma[c] : 1.0F) * invstd / count;
            for (std::int64_t j = 0; j < v.count; ++j) {
              const float xhat = (xc[v.at(j)] - mean) * invstd;
              dxc[v.at(j)] = rules::batchnorm_input_grad(dyc[v.at(j)], xhat, k, count,
                                                         static_cast<float>(sum_dy),
                                                         static_cast<float>(sum_dy_xhat));
            }
          }),
      kernels::launch_batchnorm2d_backward(x, dy, dx, n, channels, plane, gamma, save_mean,
                                           save_invstd, dgamma, dbeta, e.stream))
}

}  // namespace cutrain::nn::backend
