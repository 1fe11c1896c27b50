// Convolution, pooling and per-channel kernels: thin grid-stride launches around the rules in
// kernels/nn/conv.cuh, pool.cuh and channel.cuh (Note [convolution as one GEMM per chunk], Note
// [channel sums in lanes]).
//
// Launch shapes: the lowering, its inverse, the permutes and the pooling windows are maps of one
// output element per lane over a resident grid (kernels/common/launch.cuh), consecutive lanes
// writing consecutive elements. They gather with integer index arithmetic rather than stream
// 16-byte vectors: the reads are strided by the geometry, so there is no vector to load. The
// per-channel reductions are one block of kChannelLanes threads per channel.
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

__global__ void col2im_kernel(rules::ConvGeometry g, const float* __restrict__ dcol,
                              std::int64_t nb, float* __restrict__ dx, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) dx[i] = rules::col2im_value(g, dcol, nb, i);
}

__global__ void gemm_to_nchw_kernel(rules::ConvGeometry g, const float* __restrict__ ycol,
                                    std::int64_t nb, const float* __restrict__ bias,
                                    float* __restrict__ y, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) {
    const float v = ycol[rules::gemm_index_of_nchw(g, nb, i)];
    y[i] = bias != nullptr ? v + bias[(i / g.p()) % g.co] : v;
  }
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

__global__ void channel_sum_kernel(const float* __restrict__ x, rules::ChannelView v,
                                   float* __restrict__ out) {
  __shared__ double shared[rules::kChannelLanes + 1];
  const float* xc = x + v.base(blockIdx.x);
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < v.count; j += rules::kChannelLanes) s += xc[v.at(j)];
  const double total = block_lane_sum(s, shared);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<float>(total);
}

__global__ void batchnorm2d_train_kernel(const float* __restrict__ x, float* __restrict__ y,
                                         rules::ChannelView v, const float* gamma,
                                         const float* beta, float eps, float momentum,
                                         float* running_mean, float* running_var, float* save_mean,
                                         float* save_invstd, bool relu) {
  __shared__ double shared[rules::kChannelLanes + 1];
  const auto c = static_cast<std::int64_t>(blockIdx.x);
  const float* xc = x + v.base(c);
  float* yc = y + v.base(c);
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < v.count; j += rules::kChannelLanes) s += xc[v.at(j)];
  const double mean = block_lane_sum(s, shared) / static_cast<double>(v.count);
  double ss = 0.0;
  for (std::int64_t j = threadIdx.x; j < v.count; j += rules::kChannelLanes)
    ss += rules::bn_square_dev(xc, v.at(j), mean);
  const double var = block_lane_sum(ss, shared) / static_cast<double>(v.count);
  __shared__ float stats[2];
  if (threadIdx.x == 0) {
    rules::batchnorm_finish(mean, var, v.count, eps, momentum, running_mean + c, running_var + c,
                            save_mean + c, save_invstd + c);
    stats[0] = save_mean[c];
    stats[1] = save_invstd[c];
  }
  __syncthreads();
  const float g = gamma ? gamma[c] : 1.0F, b = beta ? beta[c] : 0.0F;
  for (std::int64_t j = threadIdx.x; j < v.count; j += rules::kChannelLanes)
    yc[v.at(j)] =
        rules::bn_output(rules::batchnorm_apply(xc[v.at(j)], stats[0], stats[1], g, b), relu);
}

__global__ void batchnorm2d_eval_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        std::int64_t channels, std::int64_t plane,
                                        const float* gamma, const float* beta, float eps,
                                        const float* running_mean, const float* running_var,
                                        bool relu, std::int64_t n) {
  for (std::int64_t i = lane_id(); i < n; i += lanes()) {
    const std::int64_t c = (i / plane) % channels;
    y[i] = rules::bn_output(
        rules::batchnorm_apply(x[i], running_mean[c], rules::batchnorm_invstd(running_var[c], eps),
                               gamma ? gamma[c] : 1.0F, beta ? beta[c] : 0.0F),
        relu);
  }
}

__global__ void batchnorm2d_backward_kernel(const float* __restrict__ x,
                                            const float* __restrict__ relu_y,
                                            const float* __restrict__ dy, float* dx,
                                            rules::ChannelView v, const float* gamma,
                                            const float* save_mean, const float* save_invstd,
                                            float* dgamma, float* dbeta) {
  __shared__ double shared[rules::kChannelLanes + 1];
  const auto c = static_cast<std::int64_t>(blockIdx.x);
  const float* xc = x + v.base(c);
  const float* dyc = dy + v.base(c);
  const float* yc = relu_y != nullptr ? relu_y + v.base(c) : nullptr;
  const float mean = save_mean[c], invstd = save_invstd[c];
  double s = 0.0, sx = 0.0;
  for (std::int64_t j = threadIdx.x; j < v.count; j += rules::kChannelLanes) {
    const float g = rules::bn_upstream(yc, dyc, v.at(j));
    s += g;
    sx += rules::bn_dy_xhat(xc, g, v.at(j), mean, invstd);
  }
  const double sum_dy = block_lane_sum(s, shared);
  const double sum_dy_xhat = block_lane_sum(sx, shared);
  if (threadIdx.x == 0) {
    if (dgamma != nullptr) dgamma[c] = static_cast<float>(sum_dy_xhat);
    if (dbeta != nullptr) dbeta[c] = static_cast<float>(sum_dy);
  }
  if (dx == nullptr) return;
  float* dxc = dx + v.base(c);
  const float count = static_cast<float>(v.count);
  const float k = (gamma ? gamma[c] : 1.0F) * invstd / count;
  for (std::int64_t j = threadIdx.x; j < v.count; j += rules::kChannelLanes) {
    dxc[v.at(j)] = rules::batchnorm_input_grad(xc[v.at(j)], rules::bn_upstream(yc, dyc, v.at(j)),
                                               mean, invstd, k, count, static_cast<float>(sum_dy),
                                               static_cast<float>(sum_dy_xhat));
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
                   NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(col2im_kernel, nb * g.c * g.in_plane(), g, dcol, nb, dx);
}
void launch_gemm_to_nchw(const rules::ConvGeometry& g, const float* ycol, std::int64_t nb,
                         const float* bias, float* y, NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(gemm_to_nchw_kernel, nb * g.co * g.p(), g, ycol, nb, bias, y);
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
void launch_batchnorm2d_eval(const float* x, float* y, std::int64_t n, std::int64_t channels,
                             std::int64_t plane, const float* gamma, const float* beta, float eps,
                             const float* running_mean, const float* running_var, bool relu,
                             NativeStream stream) {
  CUTRAIN_CONV_LAUNCH(batchnorm2d_eval_kernel, n * channels * plane, x, y, channels, plane, gamma,
                      beta, eps, running_mean, running_var, relu);
}

void launch_channel_sum(const float* x, std::int64_t n, std::int64_t channels, std::int64_t plane,
                        float* out, NativeStream stream) {
  if (channels == 0) return;
  channel_sum_kernel<<<static_cast<unsigned>(channels), kBlock, 0, stream>>>(
      x, rules::channel_view(n, channels, plane), out);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_batchnorm2d_train(const float* x, float* y, std::int64_t n, std::int64_t channels,
                              std::int64_t plane, const float* gamma, const float* beta, float eps,
                              float momentum, float* running_mean, float* running_var,
                              float* save_mean, float* save_invstd, bool relu,
                              NativeStream stream) {
  if (channels == 0) return;
  batchnorm2d_train_kernel<<<static_cast<unsigned>(channels), kBlock, 0, stream>>>(
      x, y, rules::channel_view(n, channels, plane), gamma, beta, eps, momentum, running_mean,
      running_var, save_mean, save_invstd, relu);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}
void launch_batchnorm2d_backward(const float* x, const float* relu_y, const float* dy, float* dx,
                                 std::int64_t n, std::int64_t channels, std::int64_t plane,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, float* dgamma, float* dbeta,
                                 NativeStream stream) {
  if (channels == 0) return;
  batchnorm2d_backward_kernel<<<static_cast<unsigned>(channels), kBlock, 0, stream>>>(
      x, relu_y, dy, dx, rules::channel_view(n, channels, plane), gamma, save_mean, save_invstd,
      dgamma, dbeta);
  CUTRAIN_CUDA_CHECK_LAUNCH();
}

}  // namespace cutrain::kernels
