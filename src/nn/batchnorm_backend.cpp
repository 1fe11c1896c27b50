// BatchNorm's CPU loops and CUDA dispatch (see batchnorm_backend.hpp). The CPU adds each channel
// in the GPU's lanes (Note [channel sums in lanes]), so both backends give the same bits.
#include "src/nn/batchnorm_backend.hpp"

#include <algorithm>
#include <vector>

#include "kernels/nn/channel.cuh"
#include "src/cpu/parallel.hpp"
#include "src/cuda/dispatch.hpp"
#include "src/nn/channel_cpu.hpp"
#if CUTRAIN_WITH_CUDA
#include "kernels/nn/conv.hpp"
#endif

namespace cutrain::nn::backend {
namespace {

using detail::combine;
using detail::for_channel;
using detail::for_lane_runs;
using detail::lane_sum;

std::size_t sz(std::int64_t n) {
  return static_cast<std::size_t>(n);
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

// One channel's passes of the training forward, shared by the one-process loop (every pass of a
// channel in turn, while it is in the core's cache) and the synchronized one (each pass over
// every channel, the ranks' sums between them): the same expressions, hence the same bits.
struct TrainChannel {
  rules::ChannelView v;
  const float* x;
  float* y;
  const float *gamma, *beta;
  float eps, momentum;
  float *running_mean, *running_var, *save_mean, *save_invstd;
  bool relu;
  rules::Store store;  // Note [16-bit stores]

  double sum(std::int64_t c) const {
    const float* xc = x + v.base(c);
    return lane_sum(v, [&](std::int64_t at) { return double{xc[at]}; });
  }
  double square_dev(std::int64_t c, double mean) const {
    const float* xc = x + v.base(c);
    return lane_sum(v, [&](std::int64_t at) { return rules::bn_square_dev(xc, at, mean); });
  }
  // count: the values the statistics are over (this batch's v.count, or the ranks').
  void finish_and_apply(std::int64_t c, double sum, double square_dev, double count) const {
    const double mean = sum / count, var = square_dev / count;
    rules::batchnorm_finish(mean, var, static_cast<std::int64_t>(count), eps, momentum,
                            running_mean + c, running_var + c, save_mean + c, save_invstd + c);
    const float g = gamma ? gamma[c] : 1.0F, b = beta ? beta[c] : 0.0F;
    const float m = save_mean[c], is = save_invstd[c];
    const float* xc = x + v.base(c);
    float* yc = y + v.base(c);
    rules::with_store(store, [&](auto s) {
      for_channel(v, [&](std::int64_t, std::int64_t at) {
        yc[at] =
            rules::stored(s, rules::bn_output(rules::batchnorm_apply(xc[at], m, is, g, b), relu));
      });
    });
  }
};

// The backward's two passes of one channel (shared likewise).
struct BackwardChannel {
  rules::ChannelView v;
  const float *x, *relu_y, *dy;
  float* dx;
  const float *gamma, *save_mean, *save_invstd;
  float *dgamma, *dbeta;
  rules::Store store;  // Note [16-bit stores]
  bool frozen;         // eval mode: dx = gamma invstd dy

  // sums[0], sums[1] = the sums of dy and of dy x-hat; dgamma and dbeta from them.
  void sums(std::int64_t c, double* sums) const {
    const float* xc = x + v.base(c);
    const float* dyc = dy + v.base(c);
    if (relu_y != nullptr) {
      batchnorm_backward_sums<true>(v, xc, relu_y + v.base(c), dyc, save_mean[c], save_invstd[c],
                                    sums[0], sums[1]);
    } else {
      batchnorm_backward_sums<false>(v, xc, nullptr, dyc, save_mean[c], save_invstd[c], sums[0],
                                     sums[1]);
    }
    if (dgamma != nullptr) dgamma[c] = static_cast<float>(sums[1]);
    if (dbeta != nullptr) dbeta[c] = static_cast<float>(sums[0]);
  }
  void input_grad(std::int64_t c, const double* sums, float count) const {
    const float* xc = x + v.base(c);
    const float* dyc = dy + v.base(c);
    const float* yc = relu_y != nullptr ? relu_y + v.base(c) : nullptr;
    float* dxc = dx + v.base(c);
    const float mean = save_mean[c], invstd = save_invstd[c];
    if (frozen) {
      rules::with_store(store, [&](auto s) {
        for_channel(v, [&](std::int64_t, std::int64_t at) {
          dxc[at] = rules::stored(s, rules::batchnorm_frozen_input_grad(
                                         gamma, c, invstd, rules::bn_upstream(yc, dyc, at)));
        });
      });
      return;
    }
    const float k = rules::batchnorm_grad_scale(gamma, c, invstd, count);
    const auto sum_dy = static_cast<float>(sums[0]), sum_dy_xhat = static_cast<float>(sums[1]);
    rules::with_store(store, [&](auto s) {
      for_channel(v, [&](std::int64_t, std::int64_t at) {
        dxc[at] = rules::stored(
            s, rules::batchnorm_input_grad(xc[at], rules::bn_upstream(yc, dyc, at), mean, invstd, k,
                                           count, sum_dy, sum_dy_xhat));
      });
    });
  }
};

void train_cpu(const TrainChannel& t, std::int64_t channels, const BatchSync& sync) {
  if (sync.sum == nullptr) {
    cpu::parallel_rows(sz(channels), sz(t.v.count), [=](std::size_t ci) {
      const auto c = static_cast<std::int64_t>(ci);
      const auto count = static_cast<double>(t.v.count);
      const double s = t.sum(c);
      t.finish_and_apply(c, s, t.square_dev(c, s / count), count);
    });
    return;
  }
  // Note [synchronized batch statistics]: [count | sums | squared deviations].
  double* totals = sync.totals;
  double* sums = totals + 1;
  double* squares = sums + channels;
  cpu::parallel_rows(sz(channels), sz(t.v.count),
                     [=](std::size_t c) { sums[c] = t.sum(static_cast<std::int64_t>(c)); });
  totals[0] = static_cast<double>(t.v.count);
  (*sync.sum)(totals, sz(channels + 1), nullptr);
  cpu::parallel_rows(sz(channels), sz(t.v.count), [=](std::size_t c) {
    squares[c] = t.square_dev(static_cast<std::int64_t>(c), sums[c] / totals[0]);
  });
  (*sync.sum)(squares, sz(channels), nullptr);
  cpu::parallel_rows(sz(channels), sz(t.v.count), [=](std::size_t c) {
    t.finish_and_apply(static_cast<std::int64_t>(c), sums[c], squares[c], totals[0]);
  });
}

void backward_cpu(const BackwardChannel& b, std::int64_t channels, const BatchSync& sync) {
  if (sync.sum == nullptr) {
    cpu::parallel_rows(sz(channels), sz(b.v.count), [=](std::size_t ci) {
      const auto c = static_cast<std::int64_t>(ci);
      double sums[2];
      b.sums(c, sums);
      if (b.dx != nullptr) b.input_grad(c, sums, static_cast<float>(b.v.count));
    });
    return;
  }
  double* sums = sync.totals + 1;  // 2 per channel, after the forward's count
  cpu::parallel_rows(sz(channels), sz(b.v.count),
                     [=](std::size_t c) { b.sums(static_cast<std::int64_t>(c), sums + 2 * c); });
  (*sync.sum)(sums, sz(2 * channels), nullptr);
  if (b.dx == nullptr) return;
  const auto count = static_cast<float>(sync.totals[0]);
  cpu::parallel_rows(sz(channels), sz(b.v.count), [=](std::size_t c) {
    b.input_grad(static_cast<std::int64_t>(c), sums + 2 * c, count);
  });
}

}  // namespace

void batchnorm_train(const Exec& e, const float* x, float* y, std::int64_t n, std::int64_t channels,
                     std::int64_t plane, const float* gamma, const float* beta, float eps,
                     float momentum, float* running_mean, float* running_var, float* save_mean,
                     float* save_invstd, bool relu, [[maybe_unused]] double* scratch,
                     const BatchSync& sync, rules::Store store) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  if (e.device.is_cpu()) {
    train_cpu({v, x, y, gamma, beta, eps, momentum, running_mean, running_var, save_mean,
               save_invstd, relu, store},
              channels, sync);
    return;
  }
  CUTRAIN_ON_CUDA(kernels::launch_batchnorm_train(
      x, y, n, channels, plane, gamma, beta, eps, momentum, running_mean, running_var, save_mean,
      save_invstd, relu, scratch, sync, store, e.stream));
}

void batchnorm_eval(const Exec& e, const float* x, float* y, std::int64_t n, std::int64_t channels,
                    std::int64_t plane, const float* gamma, const float* beta, float eps,
                    const float* running_mean, const float* running_var, bool relu,
                    rules::Store store) {
  if (e.device.is_cpu()) {
    cpu::parallel_rows(sz(n * channels), [=](std::size_t r) {
      const auto c = static_cast<std::int64_t>(r) % channels;
      const float invstd = rules::batchnorm_invstd(running_var[c], eps);
      const float g = gamma ? gamma[c] : 1.0F, b = beta ? beta[c] : 0.0F;
      const std::int64_t at = static_cast<std::int64_t>(r) * plane;
      rules::with_store(store, [&](auto s) {
        for (std::int64_t p = 0; p < plane; ++p)
          y[at + p] = rules::stored(
              s, rules::bn_output(rules::batchnorm_apply(x[at + p], running_mean[c], invstd, g, b),
                                  relu));
      });
    });
    return;
  }
  CUTRAIN_ON_CUDA(kernels::launch_batchnorm_eval(x, y, n, channels, plane, gamma, beta, eps,
                                                 running_mean, running_var, relu, store, e.stream));
}

void batchnorm_backward(const Exec& e, const float* x, const float* relu_y, const float* dy,
                        float* dx, std::int64_t n, std::int64_t channels, std::int64_t plane,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dgamma, float* dbeta, [[maybe_unused]] double* scratch,
                        const BatchSync& sync, rules::Store store, bool frozen) {
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  if (e.device.is_cpu()) {
    backward_cpu(
        {v, x, relu_y, dy, dx, gamma, save_mean, save_invstd, dgamma, dbeta, store, frozen},
        channels, sync);
    return;
  }
  CUTRAIN_ON_CUDA(kernels::launch_batchnorm_backward(x, relu_y, dy, dx, n, channels, plane, gamma,
                                                     save_mean, save_invstd, dgamma, dbeta, scratch,
                                                     sync, store, frozen, e.stream));
}

void batchnorm_frozen_stats(const Exec& e, std::int64_t channels, float eps,
                            const float* running_mean, const float* running_var, float* save_mean,
                            float* save_invstd) {
  if (e.device.is_cpu()) {
    for (std::int64_t c = 0; c < channels; ++c) {
      save_mean[c] = running_mean[c];
      save_invstd[c] = rules::batchnorm_invstd(running_var[c], eps);
    }
    return;
  }
  CUTRAIN_ON_CUDA(kernels::launch_batchnorm_frozen_stats(channels, eps, running_mean, running_var,
                                                         save_mean, save_invstd, e.stream));
}

}  // namespace cutrain::nn::backend
