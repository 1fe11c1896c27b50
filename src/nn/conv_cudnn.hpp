#pragma once
// Note [convolutions on cuDNN]: on a GPU, Conv2d runs each of its three convolutions - forward,
// the input gradient (backward data) and the weight gradient (backward filter) - as one cuDNN
// graph-API execution plan over the whole batch in NCHW, where cuDNN has a plan, and lowers it to
// GEMMs otherwise (Note [convolution as one GEMM per chunk]): the lowering writes and reads a
// K x N P column matrix (116 MB for the default CNN's second convolution at batch 128) where an
// implicit-GEMM engine reads the activation itself. The engine is the first configuration cuDNN's
// heuristics (mode A, then its fallback list) rank that is
//  - deterministic (no NONDETERMINISTIC note): the same bits on every run;
//  - direct (no FFT or WINOGRAD note): the products themselves, not transforms that round
//    anew - so strict fp32 stays within accumulation order of the lowering, and 16-bit values
//    are still multiplied exactly;
//  - without DOWN_CONVERT_INPUTS, and in an fp32 model without TENSOR_CORE (TF32) - PyTorch's
//    filter for cudnn.deterministic without allow_tf32. tf32, bf16 and fp16 models allow TF32
//    tensor cores: exact on 16-bit values (at most 10 fraction bits, fp32's exponent range);
//  - precompiled (no RUNTIME_COMPILATION note): nothing compiled at the first step or during a
//    CUDA graph's capture;
//  - within the workspace the layer already has (the lowering's, sized when the model allocates
//    for a batch), so the steady state allocates nothing and a captured graph's pointers hold.
// The first in cuDNN's ranking, not the fastest of a timed trial (cudnn.benchmark): a timing picks
// differently from run to run, and the bits would follow it. Plans are made per (operation,
// batch, pointers' alignment, TF32) when first needed - in a step before any capture - and kept,
// a missing one too (with its reason). A grouped convolution (depthwise included: Note [grouped
// convolution]) is one graph too, its weight [Co, C/G, kh, kw] against x's C channels - but never
// one of a single input and output channel per group (a 1 -> 1 convolution, a depthwise one
// without a channel multiplier): cuDNN 9.19's mode-A heuristics raise SIGFPE (an integer division
// by zero, which no caller can catch) on such a forward (seen without a GPU, at strides 1 to 3),
// so it lowers (refusal(); CudnnConv.OneChannelPerGroupIsLoweredWithoutAskingCudnn, and a probe
// of random geometries, CudnnConv.RandomGeometriesAreRankedOrRefusedAndNoneKillsTheProcess). The
// bias and the 16-bit stores (Note [16-bit stores]) are a pass after the forward plan; the input
// gradient's rounding one after the backward-data plan; the bias gradient stays channel_sum's.
// CUTRAIN_CUDNN=0 (read when a model first convolves) or a machine without cuDNN lowers every
// convolution (Note [cuDNN loaded at run time]).

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "kernels/common/half.cuh"
#include "kernels/nn/conv.cuh"
#include "src/nn/backend.hpp"
#include "src/nn/context.hpp"

namespace cutrain::nn::cudnn_conv {

/// CUTRAIN_CUDNN: unset or 1 true, 0 false; anything else throws cutrain::Error naming it.
bool enabled_by_environment();

/// The model's cuDNN handle, made on first use (on the first forward, before any capture) and
/// bound to the resources' stream; null when cuDNN is not used - r.cudnn_why says why.
void* handle(LayerContext::Resources& r);

enum class Op : std::uint8_t { kForward, kBackwardData, kBackwardFilter };

/// What a plan is made for. The tensors by unique id: 1 x (dx), 2 w (dw), 3 y (dy).
struct Request {
  rules::ConvGeometry g;
  std::int64_t n = 0;          ///< batch
  Op op = Op::kForward;        ///< which convolution
  std::int64_t alignment = 4;  ///< bytes: the three pointers' common alignment, at most 16
  bool allow_tf32 = false;     ///< TF32 tensor-core engines allowed
};

/// Why a convolution is not put to cuDNN at all (the note above), or "".
std::string refusal(const rules::ConvGeometry& g);

/// What cuDNN's heuristics make of a request: the engine configurations they rank, those they
/// hand out, and how many of those pass the filter above, or why none does. The descriptors, the
/// operation graph and the ranking need no GPU; the configurations themselves do (without one
/// none is handed out).
struct Candidates {
  int listed = 0;
  int offered = 0;
  int kept = 0;
  std::string why;  ///< "" when kept > 0
};
Candidates candidates(const Request& r);

/// A Conv2d's plans (one per Request, made on first use).
class Plans {
 public:
  Plans();
  ~Plans();
  Plans(const Plans&) = delete;
  Plans& operator=(const Plans&) = delete;

  /// y = conv(x, w) (+ bias per channel), stored as `store` says; false (nothing run) when cuDNN
  /// has no plan for it: lower instead. `handle`: detail::cudnn::Handle, bound to e.stream.
  bool forward(const backend::Exec& e, void* handle, const rules::ConvGeometry& g, std::int64_t n,
               const float* x, const float* w, const float* bias, float* y, void* workspace,
               std::size_t workspace_bytes, rules::Store store);
  /// dw = the weight gradient (overwritten) and, when dx is not null, dx stored as `store` says;
  /// false (nothing run) when cuDNN has no plan for either.
  bool backward(const backend::Exec& e, void* handle, const rules::ConvGeometry& g, std::int64_t n,
                const float* x, const float* dy, const float* w, float* dw, float* dx,
                void* workspace, std::size_t workspace_bytes, rules::Store store);
  /// "cuDNN 9.19 (engine 12)" after a forward that ran on cuDNN, else why the last one lowered.
  const std::string& last() const { return last_; }
  void set_last(std::string what) { last_ = std::move(what); }  ///< a lowering decided elsewhere

 private:
  class Plan;
  const Plan* plan(void* handle, const Request& r, std::size_t workspace_bytes);
  using Key = std::tuple<int, std::int64_t, std::int64_t, bool>;  // op, n, alignment, tf32
  std::map<Key, std::unique_ptr<Plan>> plans_;                    // null: cuDNN has none
  std::map<Key, std::string> why_;
  std::string last_;
};

}  // namespace cutrain::nn::cudnn_conv
