// Convolution, pooling and per-channel kernels: thin grid-stride launches around the rules in
// kernels/nn/conv.cuh, pool.cuh and channel.cuh (Note [convolution as one GEMM per chunk], Note
// [channel sums in lanes]).
//
// Launch shapes: the lowering, its inverse, the permutes and the pooling windows are maps of one
// output element per lane over a resident grid (kernels/common/launch.cuh), consecutive lanes
// writing consecutive elements. They gather with integer index arithmetic rather than stream
// 16-byte vectors: the reads are strided by the geometry, so there is no vector to load. The
// per-channel reductions are a grid of channels x segments, one block of kChannelLanes threads
// per segment (Note [channel sums in lanes]), each followed by a per-channel pass over the
// segments' partials and, for BatchNorm2d, an element-wise pass at full residency.
#include "kernels/nn/conv.hpp"

#include "kernels/common/launch.cuh"
#include "kernels/nn/channel.cuh"

namespace cutrain::kernels {
namespace {

static_assert(rules::kChannelLanes == kBlock, "a channel's lanes are one block's threads");

__device__ __forceinline__ std::int64_t lane_id() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t lanes() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

__global__ void im2col_kernel(rules::ConvGeometry g, const float* __restrict__ x, std::int64_t nb,
                              float* __restrict__ col, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) col[i] = rules::im2col_value(g, x, nb, i);
}

// The stores below that write a layer's output or input gradient round as `store` says (Note
// [16-bit stores], kernels/common/half.cuh).
__global__ void col2im_kernel(rules::ConvGeometry g, const float* __restrict__ dcol,
                              std::int64_t nb, float* __restrict__ dx, rules::Store store,
                              std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes())
    dx[i] = rules::stored(store, rules::col2im_value(g, dcol, nb, i));
}

__global__ void gemm_to_nchw_kernel(rules::ConvGeometry g, const float* __restrict__ ycol,
                                    std::int64_t nb, const float* __restrict__ bias,
                                    float* __restrict__ y, rules::Store store, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) {
    const float v = ycol[rules::gemm_index_of_nchw(g, nb, i)];
    y[i] = rules::stored(store, bias != nullptr ? v + bias[(i / g.p()) % g.co] : v);
  }
}

__global__ void channel_bias_kernel(float* __restrict__ y, const float* __restrict__ bias,
                                    std::int64_t channels, std::int64_t plane, rules::Store store,
                                    std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes())
    y[i] = rules::stored(store, bias != nullptr ? y[i] + bias[(i / plane) % channels] : y[i]);
}

__global__ void nchw_to_gemm_kernel(rules::ConvGeometry g, const float* __restrict__ dy,
                                    std::int64_t nb, float* __restrict__ dycol, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes())
    dycol[rules::gemm_index_of_nchw(g, nb, i)] = dy[i];
}

__global__ void pool_forward_kernel(rules::Pool kind, rules::ConvGeometry g,
                                    const float* __restrict__ x, float* __restrict__ y,
                                    std::int32_t* index, std::int64_t n) {
  for (std::int64_t o = lane_id(); o < n; o += lanes())
    y[o] = rules::pool_value(kind, g, x, o, index);
}

__global__ void pool_backward_kernel(rules::Pool kind, rules::ConvGeometry g,
                                     const float* __restrict__ dy,
                                     const std::int32_t* __restrict__ index, float* __restrict__ dx,
                                     std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes())
    dx[i] = rules::pool_grad(kind, g, dy, index, i);
}

// The block's lane sums combined in lane order (thread 0), returned to every thread.
__device__ double block_lane_sum(double mine, double* shared) {
  shared[threadIdx.x] = mine;
  __syncthreads();
  if (threadIdx.x == 0) shared[rules::kChannelLanes] = rules::combine_lanes(shared);
  __syncthreads();
  const double total = shared[rules::kChannelLanes];
  __syncthreads();  // the next call's writes must not overtake this read
  return total;
}

// Note [channel sums in lanes]: block (c, s) of a grid (channels, segments) is segment s of
// channel c; its thread l walks lane s L + l. value(offset from the channel's base).
template <class Value>
__device__ double segment_sum(const rules::ChannelView& v, const Value& value, double* shared) {
  double acc = 0.0;
  for (rules::LaneCursor k(v, blockIdx.y * rules::kChannelLanes + threadIdx.x); k.j < v.count;
       k.next(v))
    acc += value(k.at(v));
  return block_lane_sum(acc, shared);
}

__device__ __forceinline__ std::int64_t segment_slot(const rules::ChannelView& v) {
  return static_cast<std::int64_t>(blockIdx.x) * v.segments + blockIdx.y;
}

// partial[c S + s] = segment s of channel c's sum of x.
__global__ void channel_partials_kernel(const float* __restrict__ x, rules::ChannelView v,
                                        double* __restrict__ partial) {
  __shared__ double shared[rules::kChannelLanes + 1];
  const float* xc = x + v.base(blockIdx.x);
  const double t = segment_sum(
      v, [&](std::int64_t at) { return double{xc[at]}; }, shared);
  if (threadIdx.x == 0) partial[segment_slot(v)] = t;
}

// BatchNorm2d's second pass: the squared deviations from the channel's mean, the mean from the
// first pass's sums (every block of the channel derives the same one).
__global__ void batchnorm_square_dev_kernel(const float* __restrict__ x, rules::ChannelView v,
                                            rules::ChannelSums sums,
                                            double* __restrict__ partial_sq) {
  __shared__ double shared[rules::kChannelLanes + 1];
  const auto c = static_cast<std::int64_t>(blockIdx.x);
  const float* xc = x + v.base(c);
  const double mean = sums.total(c) / sums.count_or(v.count);
  const double t = segment_sum(
      v, [&](std::int64_t at) { return rules::bn_square_dev(xc, at, mean); }, shared);
  if (threadIdx.x == 0) partial_sq[segment_slot(v)] = t;
}

// out[c] = channel c's total of its segments' partials (channel_sum's, as T = float; what the
// ranks sum, as double: Note [synchronized batch statistics]), and *count = this batch's count
// when given.
template <class T>
__global__ void channel_totals_kernel(const double* __restrict__ partial, rules::ChannelView v,
                                      T* __restrict__ out, double* count, std::int64_t channels) {
  for (std::int64_t c = lane_id(); c < channels; c += lanes())
    out[c] = static_cast<T>(rules::combine_segments(partial + c * v.segments, v.segments));
  if (count != nullptr && lane_id() == 0) *count = static_cast<double>(v.count);
}

// One thread per channel: mean and biased variance, then the running statistics and the saved
// mean and 1/std (batchnorm_finish).
__global__ void batchnorm_finish_kernel(rules::ChannelSums sum, rules::ChannelSums sq,
                                        rules::ChannelView v, float eps, float momentum,
                                        float* running_mean, float* running_var, float* save_mean,
                                        float* save_invstd, std::int64_t channels) {
  for (std::int64_t c = lane_id(); c < channels; c += lanes()) {
    const double count = sum.count_or(v.count);
    const double mean = sum.total(c) / count;
    const double var = sq.total(c) / count;
    rules::batchnorm_finish(mean, var, static_cast<std::int64_t>(count), eps, momentum,
                            running_mean + c, running_var + c, save_mean + c, save_invstd + c);
  }
}

// y = [relu](gamma x-hat + beta) with the batch's statistics (batchnorm_finish's).
__global__ void batchnorm_apply_kernel(const float* __restrict__ x, float* __restrict__ y,
                                       std::int64_t channels, std::int64_t plane,
                                       const float* gamma, const float* beta,
                                       const float* __restrict__ mean,
                                       const float* __restrict__ invstd, bool relu,
                                       rules::Store store, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) {
    const std::int64_t c = (i / plane) % channels;
    y[i] = rules::stored(store, rules::bn_output(rules::batchnorm_apply(x[i], mean[c], invstd[c],
                                                                        gamma ? gamma[c] : 1.0F,
                                                                        beta ? beta[c] : 0.0F),
                                                 relu));
  }
}

__global__ void batchnorm_eval_kernel(const float* __restrict__ x, float* __restrict__ y,
                                      std::int64_t channels, std::int64_t plane, const float* gamma,
                                      const float* beta, float eps, const float* running_mean,
                                      const float* running_var, bool relu, rules::Store store,
                                      std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) {
    const std::int64_t c = (i / plane) % channels;
    y[i] = rules::stored(
        store,
        rules::bn_output(rules::batchnorm_apply(x[i], running_mean[c],
                                                rules::batchnorm_invstd(running_var[c], eps),
                                                gamma ? gamma[c] : 1.0F, beta ? beta[c] : 0.0F),
                         relu));
  }
}

// The backward's sums per segment: dy and dy x-hat (dy: the gradient below the fused ReLU).
__global__ void batchnorm_backward_partials_kernel(
    const float* __restrict__ x, const float* __restrict__ relu_y, const float* __restrict__ dy,
    rules::ChannelView v, const float* save_mean, const float* save_invstd,
    double* __restrict__ partial_dy, double* __restrict__ partial_dy_xhat) {
  __shared__ double shared[rules::kChannelLanes + 1];
  const auto c = static_cast<std::int64_t>(blockIdx.x);
  const float* xc = x + v.base(c);
  const float* dyc = dy + v.base(c);
  const float* yc = relu_y != nullptr ? relu_y + v.base(c) : nullptr;
  const float mean = save_mean[c], invstd = save_invstd[c];
  double s = 0.0, sx = 0.0;
  for (rules::LaneCursor k(v, blockIdx.y * rules::kChannelLanes + threadIdx.x); k.j < v.count;
       k.next(v)) {
    const std::int64_t at = k.at(v);
    const float g = rules::bn_upstream(yc, dyc, at);
    s += g;
    sx += rules::bn_dy_xhat(xc, g, at, mean, invstd);
  }
  const double sum_dy = block_lane_sum(s, shared);
  const double sum_dy_xhat = block_lane_sum(sx, shared);
  if (threadIdx.x == 0) {
    partial_dy[segment_slot(v)] = sum_dy;
    partial_dy_xhat[segment_slot(v)] = sum_dy_xhat;
  }
}

// One thread per channel: the two sums (kept for the dx pass), and dgamma, dbeta.
__global__ void batchnorm_backward_finish_kernel(const double* __restrict__ partial_dy,
                                                 const double* __restrict__ partial_dy_xhat,
                                                 rules::ChannelView v, float* dgamma, float* dbeta,
                                                 double* __restrict__ sums, std::int64_t channels) {
  for (std::int64_t c = lane_id(); c < channels; c += lanes()) {
    const double sum_dy = rules::combine_segments(partial_dy + c * v.segments, v.segments);
    const double sum_dy_xhat =
        rules::combine_segments(partial_dy_xhat + c * v.segments, v.segments);
    sums[2 * c] = sum_dy;
    sums[2 * c + 1] = sum_dy_xhat;
    if (dgamma != nullptr) dgamma[c] = static_cast<float>(sum_dy_xhat);
    if (dbeta != nullptr) dbeta[c] = static_cast<float>(sum_dy);
  }
}

__global__ void batchnorm_input_grad_kernel(
    const float* __restrict__ x, const float* __restrict__ relu_y, const float* __restrict__ dy,
    float* dx, rules::ChannelView v, std::int64_t channels, const float* gamma,
    const float* save_mean, const float* save_invstd, const double* __restrict__ sums,
    const double* ranks_count, rules::Store store, bool frozen, std::int64_t n) {
  // The ranks' count (Note [synchronized batch statistics]), else this batch's.
  const auto count =
      static_cast<float>(ranks_count != nullptr ? *ranks_count : static_cast<double>(v.count));
  for (std::int64_t i = lane_id(); i < n; i += lanes()) {
    const std::int64_t c = (i / v.plane) % channels;
    const float invstd = save_invstd[c];
    if (frozen) {  // eval mode: the statistics are constants
      dx[i] = rules::stored(store, rules::batchnorm_frozen_input_grad(
                                       gamma, c, invstd, rules::bn_upstream(relu_y, dy, i)));
      continue;
    }
    const float k = rules::batchnorm_grad_scale(gamma, c, invstd, count);
    dx[i] = rules::stored(
        store, rules::batchnorm_input_grad(x[i], rules::bn_upstream(relu_y, dy, i), save_mean[c],
                                           invstd, k, count, static_cast<float>(sums[2 * c]),
                                           static_cast<float>(sums[2 * c + 1])));
  }
}

__global__ void batchnorm_frozen_stats_kernel(float eps, const float* __restrict__ running_mean,
                                              const float* __restrict__ running_var,
                                              float* __restrict__ save_mean,
                                              float* __restrict__ save_invstd,
                                              std::int64_t channels) {
  for (std::int64_t c = lane_id(); c < channels; c += lanes()) {
    save_mean[c] = running_mean[c];
    save_invstd[c] = rules::batchnorm_invstd(running_var[c], eps);
  }
}

}  // namespace

#define CUTRAIN_CONV_LAUNCH(kernel, n, ...)                                                        \
  do {                                                                                             \
    if ((n) <= 0) break;                                                                           \
    kernel<<<resident_grid<kernel>(static_cast<std::size_t>(n)), kBlock, 0, stream>>>(__VA_ARGS__, \
                                                                                      (n));        \
    CUTRAIN_CUDA_CHECK_LAUNCH();                                                                   \
  } while (0)

void launch_im2col(const rules::ConvGeometry& g, const float* x, std::int64_t nb, float* col,
                   NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(im2col_kernel, g.k() * nb * g.p(), g, x, nb, col);
}
void launch_col2im(const rules::ConvGeometry& g, const float* dcol, std::int64_t nb, float* dx,
                   rules::Store store, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(col2im_kernel, nb * g.c * g.in_plane(), g, dcol, nb, dx, store);
}
void launch_gemm_to_nchw(const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                         const float* bias, float* y, rules::Store store, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(gemm_to_nchw_kernel, nb * g.co * g.p(), g, ycol, nb, bias, y, store);
}
void launch_channel_bias(float* y, const float* bias, std::int64_t n, std::int64_t channels,
                         std::int64_t plane, rules::Store store, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(channel_bias_kernel, n * channels * plane, y, bias, channels, plane, store);
}
void launch_nchw_to_gemm(const rules::ConvGeometry& g, const float* dy, std::int64_t nb,
                         float* dycol, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(nchw_to_gemm_kernel, nb * g.co * g.p(), g, dy, nb, dycol);
}
void launch_pool_forward(rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                         const float* x, float* y, std::int32_t* index, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(pool_forward_kernel, n * g.c * g.p(), kind, g, x, y, index);
}
void launch_pool_backward(rules::Pool kind, const rules::ConvGeometry& g, std::int64_t n,
                          const float* dy, const std::int32_t* index, float* dx,
                          NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(pool_backward_kernel, n * g.c * g.in_plane(), kind, g, dy, index, dx);
}
void launch_batchnorm_eval(const float* x, float* y, std::int64_t n, std::int64_t channels,
                           std::int64_t plane, const float* gamma, const float* beta, float eps,
                           const float* running_mean, const float* running_var, bool relu,
                           rules::Store store, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(batchnorm_eval_kernel, n * channels * plane, x, y, channels, plane, gamma,
                      beta, eps, running_mean, running_var, relu, store);
}

namespace {
// The segments' grid (Note [channel sums in lanes]): channels in x (up to 2^31 - 1), segments in
// y (at most kMaxChannelSegments).
dim3 segment_grid(std::int64_t channels, const rules::ChannelView& v) {
  return {static_cast<unsigned>(channels), static_cast<unsigned>(v.segments), 1};
}
}  // namespace

void launch_channel_sum(const float* x, std::int64_t n, std::int64_t channels, std::int64_t plane,
                        float* out, double* scratch, NativeStream stream) {
  if (channels == 0) return;
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  channel_partials_kernel<<<segment_grid(channels, v), kBlock, 0, stream>>>(x, v, scratch);
  CUTRAIN_CUDA_CHECK_LAUNCH();
  CUTRAIN_CONV_LAUNCH(channel_totals_kernel<float>, channels, scratch, v, out, nullptr);
}

void launch_batchnorm_train(const float* x, float* y, std::int64_t n, std::int64_t channels,
                            std::int64_t plane, const float* gamma, const float* beta, float eps,
                            float momentum, float* running_mean, float* running_var,
                            float* save_mean, float* save_invstd, bool relu, double* scratch,
                            const BatchSync& sync, rules::Store store, NativeStream stream) {
  if (channels == 0) return;
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  double* partial_sum = scratch;
  double* partial_sq = scratch + channels * v.segments;
  channel_partials_kernel<<<segment_grid(channels, v), kBlock, 0, stream>>>(x, v, partial_sum);
  CUTRAIN_CUDA_CHECK_LAUNCH();
  rules::ChannelSums sum{partial_sum, v.segments, nullptr};
  if (sync.sum != nullptr) {  // Note [synchronized batch statistics]: [count | sums | squares]
    double* totals = sync.totals;
    CUTRAIN_CONV_LAUNCH(channel_totals_kernel<double>, channels, partial_sum, v, totals + 1,
                        totals);
    (*sync.sum)(totals, static_cast<std::size_t>(channels + 1), stream);
    sum = {totals + 1, 1, totals};
  }
  batchnorm_square_dev_kernel<<<segment_grid(channels, v), kBlock, 0, stream>>>(x, v, sum,
                                                                                partial_sq);
  CUTRAIN_CUDA_CHECK_LAUNCH();
  rules::ChannelSums sq{partial_sq, v.segments, nullptr};
  if (sync.sum != nullptr) {
    double* squares = sync.totals + 1 + channels;
    CUTRAIN_CONV_LAUNCH(channel_totals_kernel<double>, channels, partial_sq, v, squares, nullptr);
    (*sync.sum)(squares, static_cast<std::size_t>(channels), stream);
    sq = {squares, 1, sync.totals};
  }
  CUTRAIN_CONV_LAUNCH(batchnorm_finish_kernel, channels, sum, sq, v, eps, momentum, running_mean,
                      running_var, save_mean, save_invstd);
  CUTRAIN_CONV_LAUNCH(batchnorm_apply_kernel, n * channels * plane, x, y, channels, plane, gamma,
                      beta, save_mean, save_invstd, relu, store);
}

void launch_batchnorm_backward(const float* x, const float* relu_y, const float* dy, float* dx,
                               std::int64_t n, std::int64_t channels, std::int64_t plane,
                               const float* gamma, const float* save_mean, const float* save_invstd,
                               float* dgamma, float* dbeta, double* scratch, const BatchSync& sync,
                               rules::Store store, bool frozen, NativeStream stream) {
  if (channels == 0) return;
  const rules::ChannelView v = rules::channel_view(n, channels, plane);
  double* partial_dy = scratch;
  double* partial_dy_xhat = scratch + channels * v.segments;
  // The two sums per channel: in the scratch, or where the ranks sum them.
  double* sums = sync.sum != nullptr ? sync.totals + 1 : scratch + 2 * channels * v.segments;
  batchnorm_backward_partials_kernel<<<segment_grid(channels, v), kBlock, 0, stream>>>(
      x, relu_y, dy, v, save_mean, save_invstd, partial_dy, partial_dy_xhat);
  CUTRAIN_CUDA_CHECK_LAUNCH();
  CUTRAIN_CONV_LAUNCH(batchnorm_backward_finish_kernel, channels, partial_dy, partial_dy_xhat, v,
                      dgamma, dbeta, sums);
  if (sync.sum != nullptr) (*sync.sum)(sums, static_cast<std::size_t>(2 * channels), stream);
  if (dx == nullptr) return;
  CUTRAIN_CONV_LAUNCH(batchnorm_input_grad_kernel, n * channels * plane, x, relu_y, dy, dx, v,
                      channels, gamma, save_mean, save_invstd, sums,
                      sync.sum != nullptr ? sync.totals : nullptr, store, frozen);
}

void launch_batchnorm_frozen_stats(std::int64_t channels, float eps, const float* running_mean,
                                   const float* running_var, float* save_mean, float* save_invstd,
                                   NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(batchnorm_frozen_stats_kernel, channels, eps, running_mean, running_var,
                      save_mean, save_invstd);
}

}  // namespace cutrain::kernels
