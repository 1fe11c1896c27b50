// Note [clip and step in one launch]: for a model whose gradients fit in the registers of one
// resident grid (about a million parameters on an H100), the global norm and the optimizer step
// run as ONE cooperative kernel instead of the norm kernel followed by the step kernel:
//   1. each thread loads its (at most R) 16-byte vectors of gradients - and of the parameters
//      and optimizer state the update will need, so those loads are in flight during 2 and 3 -
//      and accumulates its part of the norm; cub::BlockReduce makes one partial per block;
//   2. a grid-wide barrier (cooperative_groups::this_grid().sync(), which orders memory too);
//   3. every block combines all partials in the same fixed order (so every block computes the
//      same norm, scale and skip, with no second barrier), block 0 records them;
//   4. each thread updates the vectors it holds with the rule's update(), as the step kernel
//      does (Note [clip scale on device]), or, for non-finite gradients, writes nothing.
// Each gradient is read once (28 bytes per Adam parameter instead of 32) and the step costs one
// launch instead of two, which pays where the step is latency-bound (2^14 - 2^18 parameters on
// the H100: 6-8 us against 9-14 for two launches). The norm adds the same values as the two-launch
// path, but its per-block partition follows this kernel's grid, so the last bit of the norm may
// differ from it; the result is deterministic for a given device and arena size.
//
// When the arena does not fit (more vectors than R per resident thread, more blocks than the
// partials buffer), the device cannot launch cooperatively, a pointer is unaligned, or
// CUTRAIN_FUSED_CLIP_STEP=0 is set, launch_clip_step runs the two launches instead. By default
// the one launch runs only for small arenas (see kAutoVectorsPerSm below: on the H100 it is
// slower than two launches from 2^19 parameters on), so issue 9's 1M-parameter set takes the two
// launches.
#include <cooperative_groups.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <cub/block/block_reduce.cuh>

#include "cutrain/error.hpp"
#include "kernels/clip/clip.hpp"
#include "kernels/common/launch.cuh"
#include "kernels/common/vec.cuh"
#include "kernels/optim/adagrad.cuh"
#include "kernels/optim/adam.cuh"
#include "kernels/optim/optim.hpp"
#include "kernels/optim/rmsprop.cuh"
#include "kernels/optim/sgd.cuh"
#include "kernels/optim/step_control.cuh"

namespace cutrain::kernels {
namespace {

std::atomic<std::int64_t> g_fused_launches{0};

// Register budget per R (vectors held per thread): the data is (2 + slots) x R 16-byte vectors
// (Adam: up to 20 R registers). __launch_bounds__' second argument caps the registers at what
// 4, 3 or 2 resident blocks of 256 threads leave (64, 85, 128): as many resident vectors as the
// register file allows without spilling (tests/kernels/sass_check.py: no local memory).
template <int R>
constexpr int kMinBlocks = R == 1 ? 4 : (R == 2 ? 3 : 2);

template <class Rule, int R>
__global__ void __launch_bounds__(kBlock, kMinBlocks<R>) clip_step_kernel(const StepArgs<Rule> a) {
  constexpr int S = Rule::kSlots;
  using Reduce = cub::BlockReduce<rules::NormPartial, kBlock>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ rules::ClipResult shared_result;
  const FusedNormArgs& f = a.norm;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t n4 = f.n / 4;

  // 1. Loads, then this thread's part of the norm. Every load is issued before the first use
  //    (with the sum inside the load loop the compiler waited for g[r] before issuing vector
  //    r + 1's loads). On the H100 that left the time unchanged (2^20 at R = 4: 16.2 -> 16.1 us):
  //    what costs is after the barrier (kAutoVectorsPerSm below).
  Vec4 g[R], p[R], s[R][S > 0 ? S : 1];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const std::size_t i = tid + static_cast<std::size_t>(r) * stride;
    if (i >= n4) continue;
    g[r] = load4(a.grads, i);
    p[r] = load4(a.params, i);
#pragma unroll
    for (int k = 0; k < S; ++k) s[r][k] = a.state[k] != nullptr ? load4(a.state[k], i) : Vec4{};
  }
  rules::NormPartial acc{0.0, 0.0F, 0.0F};
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (tid + static_cast<std::size_t>(r) * stride >= n4) continue;
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) rules::accumulate(acc, g[r].v[lane]);
  }
  const rules::NormPartial block = Reduce(temp).Reduce(acc, rules::CombineNorms{});
  if (threadIdx.x == 0) f.partials[blockIdx.x] = block;

  // 2. Every partial is written and visible.
  cooperative_groups::this_grid().sync();

  // 3. The same combination in every block (through L2: written by other blocks).
  acc = {0.0, 0.0F, 0.0F};
  for (unsigned int j = threadIdx.x; j < gridDim.x; j += blockDim.x)
    acc = rules::combine(acc, {__ldcg(&f.partials[j].sumsq), __ldcg(&f.partials[j].maxabs), 0.0F});
  __syncthreads();  // every thread is done with `temp` from the first reduction
  const rules::NormPartial total = Reduce(temp).Reduce(acc, rules::CombineNorms{});
  // Note [dynamic loss scale]: every block reads S here, before its ticket in finish_counts.
  if (threadIdx.x == 0)
    shared_result =
        rules::finish(total, f.max_norm, f.l2, rules::inverse_scale(&a.control->loss_scale));
  __syncthreads();
  const rules::ClipResult res = shared_result;

  // Note [device step counter], as in optimizer_step_kernel: t read here, the counts updated by
  // the last block to finish.
  const bool skip = res.skip != 0;
  const int t = a.control->applied + 1;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    *f.result = res;
    if (f.norm_out != nullptr) *f.norm_out = res.norm;
  }

#pragma unroll
  for (int r = 0; r < R && !skip; ++r) {  // Non-finite guard: nothing is written.
    // 4. The update of the held vectors, each in its group (groups are 64-aligned ranges).
    const std::size_t i = tid + static_cast<std::size_t>(r) * stride;
    if (i >= n4) continue;
    int gi = 0;
    while (gi < a.num_groups && !(i >= a.groups[gi].begin / 4 && i < a.groups[gi].end / 4)) ++gi;
    if (gi == a.num_groups) continue;  // padding between groups stays as it is
    const GroupArgs group = a.groups[gi];
    const typename Rule::Prepared prep =
        Rule::prepare(a.hyper, a.control->lr[gi], group.weight_decay, t);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      float st[S > 0 ? S : 1];
#pragma unroll
      for (int k = 0; k < S; ++k) st[k] = s[r][k].v[lane];
      Rule::update(a.hyper, prep, p[r].v[lane], g[r].v[lane] * res.scale, st);
#pragma unroll
      for (int k = 0; k < S; ++k) s[r][k].v[lane] = st[k];
    }
    store4(a.params, i, p[r]);
    if (a.copy.data != nullptr) store_half4(a.copy, i, p[r], static_cast<std::uint64_t>(t));
#pragma unroll
    for (int k = 0; k < S; ++k)
      if (a.state[k] != nullptr) store4(a.state[k], i, s[r][k]);
  }
  finish_counts(a.control, skip);
}

// Note [clip and step in one launch], measured on the H100 (bench/RESULTS.md, Adam + clip,
// us per step launched / replayed from a graph, one launch against two):
//   2^17: 6.6 / 5.6 against 10.1 / 7.2      2^19 (R = 1): 12.2 / 11.3 against 12.0 / 9.9
//   2^18: 8.0 / 7.2 against 10.2 / 8.0      ~786K (R = 2): 14.1 / 13.2 against 13.9 / 11.3
//                                           2^20 (R = 4): 16.1 / 15.0 against 14.9 / 12.7
// The one launch cannot overlap its phases: every load completes before the grid barrier, and
// the update's arithmetic (Adam's IEEE sqrt and division) and the stores come after it, with
// few warps to hide their latency once a thread holds several vectors in registers (R = 4: 124
// registers, 16 warps per SM, 10.5 cycles per issued instruction under ncu). The two launches
// stream the step at full residency, loads, arithmetic and stores of different warps
// overlapping. So by default ("auto") the one launch runs only where it wins: R = 1 with at most
// 512 vectors per SM (2^18 parameters on 132 SMs), where the launch latency it saves dominates.
constexpr int kNotRead = -2;
constexpr std::size_t kAutoVectorsPerSm = 512;
std::atomic<int> g_max_vectors{kNotRead};

int vectors_from_env() {
  const char* v = std::getenv("CUTRAIN_FUSED_CLIP_STEP");
  if (v == nullptr) return kFusedClipStepAuto;
  if (std::strcmp(v, "0") == 0) return 0;
  if (std::strcmp(v, "1") == 0) return 1;
  if (std::strcmp(v, "2") == 0) return 2;
  if (std::strcmp(v, "4") == 0) return 4;
  // A typo (=off, =yes) must not measure the default under another name.
  CUTRAIN_CHECK(std::strcmp(v, "auto") == 0, "CUTRAIN_FUSED_CLIP_STEP=", v,
                " is not auto (one launch where it is faster), 0 (never), 1, 2 or 4 (wherever "
                "the arena fits a resident grid with that many vectors per thread)");
  return kFusedClipStepAuto;
}

// The fused kernel with R vectors per thread, if the whole arena fits one resident grid.
template <class Rule, int R>
bool try_fused(const StepArgs<Rule>& a, NativeStream stream) {
  const std::size_t n4 = a.norm.n / 4;
  const auto per_block = static_cast<std::size_t>(kBlock) * R;
  const std::size_t blocks = (n4 + per_block - 1) / per_block;
  // resident_grid clamps to what stays resident at once: the cooperative limit.
  const auto resident = static_cast<std::size_t>(
      resident_grid<clip_step_kernel<Rule, R>>(blocks * static_cast<std::size_t>(kBlock)));
  if (blocks == 0 || blocks > resident || blocks > static_cast<std::size_t>(kMaxNormBlocks))
    return false;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(blocks));
  config.blockDim = dim3(kBlock);
  config.stream = stream;
  cudaLaunchAttribute cooperative{};
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  config.attrs = &cooperative;
  config.numAttrs = 1;
  const cudaError_t launched = cudaLaunchKernelEx(&config, clip_step_kernel<Rule, R>, a);
  // The occupancy calculator and the cooperative-launch check should agree; if this device's
  // driver counts otherwise (the path has run on no GPU yet), the two launches run instead of
  // the step failing. The error is not sticky; clear it. fused_clip_step_launches() tells.
  if (launched == cudaErrorCooperativeLaunchTooLarge) {
    (void)cudaGetLastError();
    return false;
  }
  CUTRAIN_CUDA_CHECK(launched);
  g_fused_launches.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace

std::int64_t fused_clip_step_launches() {
  return g_fused_launches.load(std::memory_order_relaxed);
}

void set_fused_clip_step_max_vectors(int r) {
  CUTRAIN_CHECK(r == kFusedClipStepAuto || r == 0 || r == 1 || r == 2 || r == 4,
                "fused clip step: at most 0, 1, 2 or 4 vectors per thread (or auto, ",
                kFusedClipStepAuto, "), not ", r);
  g_max_vectors.store(r, std::memory_order_relaxed);
}

int fused_clip_step_max_vectors() {
  int r = g_max_vectors.load(std::memory_order_relaxed);
  if (r == kNotRead) {
    r = vectors_from_env();
    g_max_vectors.store(r, std::memory_order_relaxed);
  }
  return r;
}

template <class Rule>
void launch_clip_step(const StepArgs<Rule>& args, NativeStream stream) {
  const FusedNormArgs& f = args.norm;
  bool aligned = f.n % 4 == 0 && aligned16(args.params, args.grads);
  for (int k = 0; k < Rule::kSlots; ++k) aligned = aligned && aligned16(args.state[k]);
  const int max_r = fused_clip_step_max_vectors();
  const bool wanted =
      !f.replicated &&
      (max_r == kFusedClipStepAuto
           ? f.n / 4 <=
                 kAutoVectorsPerSm * static_cast<std::size_t>(
                                         current_device_attribute<cudaDevAttrMultiProcessorCount>())
           : max_r > 0);
  if (wanted && aligned && current_device_attribute<cudaDevAttrCooperativeLaunch>() != 0 &&
      (try_fused<Rule, 1>(args, stream) || (max_r >= 2 && try_fused<Rule, 2>(args, stream)) ||
       (max_r >= 4 && try_fused<Rule, 4>(args, stream))))
    return;
  // Two launches: the norm kernel writes the result the step kernel reads.
  launch_clip_norm(args.grads, f.n, f.partials, f.done_count, f.result, f.norm_out, f.max_norm,
                   f.l2, &args.control->loss_scale, stream);
  StepArgs<Rule> plain = args;
  plain.norm = {};
  plain.grad_scale = &f.result->scale;
  plain.skip = &f.result->skip;
  launch_optimizer_step(plain, stream);
}

template void launch_clip_step<rules::Sgd>(const StepArgs<rules::Sgd>&, NativeStream);
template void launch_clip_step<rules::Adagrad>(const StepArgs<rules::Adagrad>&, NativeStream);
template void launch_clip_step<rules::Rmsprop>(const StepArgs<rules::Rmsprop>&, NativeStream);
template void launch_clip_step<rules::Adam>(const StepArgs<rules::Adam>&, NativeStream);

}  // namespace cutrain::kernels
