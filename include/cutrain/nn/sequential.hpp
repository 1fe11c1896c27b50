#pragma once
// Sequential: a stack of layers with one parameter arena, one gradient arena and one buffer
// arena. Tensor names follow torch.nn.Sequential's state_dict: "layers.{i}.weight" with i the
// layer's position counting every layer, activations included. Activation and workspace memory
// is allocated once per batch size and reused: a steady-state step allocates nothing.
//
// Default initialization: each Linear gets He (kaiming_uniform with the relu gain) when the next
// activation is ReLU, LeakyReLU or GELU, and Xavier uniform (gain of tanh / sigmoid, or 1 with
// no activation) otherwise, unless Linear::set_init chose one; biases zero; BatchNorm scale 1,
// shift 0, running mean 0, running variance 1.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cutrain/arena.hpp"
#include "cutrain/buffer.hpp"
#include "cutrain/nn/layer.hpp"
#include "cutrain/precision.hpp"

namespace cutrain::nn {

/// Layers applied in order (torch.nn.Sequential's naming): one parameter arena, one gradient arena,
/// shapes checked at build.
class Sequential {
 public:
  /// An empty model whose input rows have `input_features` values.
  explicit Sequential(std::int64_t input_features);
  ~Sequential();
  Sequential(Sequential&&) noexcept;             ///< takes the layers and arenas
  Sequential& operator=(Sequential&&) noexcept;  ///< takes the layers and arenas

  /// Appends a layer (before build); returns *this for chaining.
  Sequential& add(std::unique_ptr<Layer> layer);
  /// Appends a layer of type L made from `args`: model.emplace<Linear>(784, 128).
  template <class L, class... Args>
  Sequential& emplace(Args&&... args) {
    return add(std::make_unique<L>(std::forward<Args>(args)...));
  }

  /// Lays out the arenas on `device` and applies the default initialization from `seed`.
  void build(Device device, std::uint64_t seed);
  bool built() const;  ///< build() has run

  /// x [B, input_features] on the model's device. The returned view is valid until the next
  /// forward. Ordered on `stream`; no host synchronization.
  const Matrix& forward(const Matrix& x, NativeStream stream = nullptr);
  /// dy [B, output_features]: writes every parameter gradient (overwriting) for the batch of the
  /// last forward; and, when `dx` is given ([B, input_features]), the gradient of the input.
  void backward(const Matrix& dy, NativeStream stream = nullptr, Matrix* dx = nullptr);
  /// The same, calling layer_done(k) once layer k's backward is issued on `stream` (k from the
  /// last layer down): data parallelism starts all-reducing finished gradients there
  /// (Note [gradient buckets]).
  void backward(const Matrix& dy, NativeStream stream, Matrix* dx,
                const std::function<void(std::size_t)>& layer_done);
  /// For each layer, the indices into parameters().layout().tensors() of its parameters.
  const std::vector<std::vector<std::size_t>>& layer_parameters() const { return layer_params_; }

  /// Training mode (Dropout active, BatchNorm from batch statistics), as torch's train().
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }           ///< inference mode, as torch's eval()
  bool training() const { return training_; }  ///< the mode forward() runs in

  Arena& parameters();  ///< every trainable tensor, in one arena ("layers.{i}.weight", ...)
  Arena& gradients();   ///< the parameters' twin: what backward() writes
  Arena& buffers();     ///< non-trainable state (BatchNorm's running statistics)
  std::int64_t input_features() const { return input_features_; }  ///< values per input row
  std::int64_t output_features() const;  ///< values per output row (classes, targets)
  /// One sample's input shape of layer i (i == size(): the model's output), after build.
  const Shape& shape(std::size_t i) const { return shapes_.at(i); }
  std::size_t size() const { return layers_.size(); }     ///< number of layers
  Layer& layer(std::size_t i) { return *layers_.at(i); }  ///< layer i (0-based)
  Device device() const;                                  ///< where the model was built
  /// Note [TF32 switch]: Precision::kTf32 runs the model's fp32 GEMMs - Linear and Conv2d,
  /// forward and backward - on TF32 tensor cores (cuBLAS's TF32 math mode, cuBLASLt's
  /// CUBLAS_COMPUTE_32F_FAST_TF32: inputs rounded to 10 mantissa bits, fp32 accumulation), as
  /// torch.backends.cuda.matmul.allow_tf32 = True does; storage, the loss, the norms and the
  /// optimizer stay fp32. kFp32 (the default) is strict fp32. kBf16 / kFp16: Note [16-bit
  /// values in fp32 storage] (cutrain/precision.hpp) - parameters as the layers read them,
  /// activations and activation gradients rounded to the 16-bit format, the master weights and
  /// parameter gradients fp32; on a GPU the GEMMs on 16-bit tensor cores. After build(); a CUDA
  /// model only for kTf32 (the CPU has no TF32 units: refused, not ignored). Detaches a
  /// parameter copy (set_parameter_copy: it is of the old format); a 32-bit precision resets the
  /// rounding to nearest.
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }  ///< set_precision's (kFp32 by default)
  /// Note [16-bit compute copy] (cutrain/precision.hpp): how the parameters a bf16 / fp16 model's
  /// training forwards read are rounded from the fp32 master - to nearest even (the default), or
  /// stochastically, which only the fused optimizer step does (Optimizer::enable_compute_copy
  /// with this rounding): a training forward of a stochastic model without a parameter copy
  /// attached (set_parameter_copy) is an error, not nearest in disguise. Trainer::fit attaches
  /// its optimizer's copy; checkpoints record the rounding. Stochastic needs a 16-bit precision.
  void set_rounding(Rounding rounding);
  Rounding rounding() const { return rounding_; }  ///< set_rounding's (nearest even by default)
  /// Note [16-bit compute copy]: training forwards of a bf16 / fp16 model read their parameters
  /// from `copy` - the optimizer's compute copy (Optimizer::compute_copy(): the master as the
  /// fused step rounded it, 2 bytes per parameter in the model's format, on its device) - widened
  /// into the arena the layers read, instead of rounding the master themselves; evaluation
  /// forwards still round the master (it may hold other weights then: an average being
  /// evaluated). The caller keeps the copy current with the master and alive until
  /// set_parameter_copy(nullptr); Trainer::fit does both. Null (the default): the model rounds.
  void set_parameter_copy(const Buffer* copy);
  std::string summary() const;  ///< one line per layer with shapes and parameter counts
  // Note [architecture in exports]: the layers as PyTorch would build them, a JSON array of
  /// {"type": kind(), "args": torch_args()}; torch.nn.Sequential(*(getattr(torch.nn, m["type"])
  /// (**m["args"]) for m in modules)) is this model (tools/cutrain_torch.py build_model).
  std::string torch_modules() const;
  std::uint64_t seed() const { return seed_; }  ///< build's seed (Dropout's masks derive from it)
  /// Forward passes so far (Dropout draws its masks from seed and this count); checkpoints save
  /// and restore it so a resumed run draws the same masks.
  std::uint64_t forward_count() const { return steps_; }
  void set_forward_count(std::uint64_t n) { steps_ = n; }  ///< a checkpoint's forward_count()
  /// Forward passes in training mode: what torch.nn.BatchNorm1d's num_batches_tracked counts
  /// (export_torch writes it there); checkpoints save and restore it too.
  std::uint64_t training_forward_count() const { return training_steps_; }
  /// A checkpoint's training_forward_count(); also where Dropout's masks continue from (on the
  /// device too: Note [forward count in device memory], a synchronization on a GPU).
  void set_training_forward_count(std::uint64_t n);
  /// Changes whenever forward() moves the model's activation and workspace buffers (a batch
  /// larger than any before): a CUDA graph captured before then holds stale pointers.
  std::uint64_t allocation_generation() const { return allocations_; }
  /// A training forward captured in a CUDA graph was replayed: it advanced the device's count
  /// (Note [forward count in device memory]); this advances the host's two counts to match.
  void count_replayed_forward();
  /// The seed Dropout's masks derive from (build's seed); checkpoints restore it.
  void set_seed(std::uint64_t seed);
  /// Data-parallel training: this model's batches are rank `rank`'s rows of batches shared by
  /// `world` ranks, which Dropout numbers its masks by (Note [replica rows],
  /// cutrain/nn/layer.hpp); Trainer::fit sets it from its communicator. Default: rank 0 of 1.
  void set_replica(int rank, int world);
  const Replica& replica() const { return replica_; }  ///< set_replica's
  /// Note [dropout stream] (src/nn/layers.cpp): training batches will have at most `rows` rows,
  /// and each training forward advances the layers' random streams (Dropout's masks) by that
  /// many rows, whatever its own batch - so a run's masks do not depend on which batch a process
  /// happened to see first (a resume that starts at an epoch's shorter last batch). Trainer::fit
  /// and find_lr set their loader's largest batch for their duration; a training forward of
  /// more rows is then refused. 0 (the default): each stream advances by the largest training
  /// batch seen so far.
  void set_training_rows(std::int64_t rows);
  std::int64_t training_rows() const { return training_rows_; }  ///< set_training_rows's
  /// values[0, n) <- their sum over the ranks (an all-reduce of doubles on the model's device,
  /// ordered on `stream`); every rank calls it with the same n at the same point.
  using RankSum = std::function<void(double* values, std::size_t n, NativeStream stream)>;
  /// Note [synchronized batch statistics] (torch.nn.SyncBatchNorm; kernels/nn/batch_sync.hpp):
  /// every BatchNorm1d / BatchNorm2d in training normalizes with the statistics of the whole
  /// global batch, its per-channel sums added over the ranks by `sum` - two calls in each such
  /// layer's forward, one in its backward - instead of its rank's rows alone. Trainer::fit sets
  /// it from its communicator when TrainerOptions::sync_batchnorm is set. Empty: off (the
  /// default, as DDP without SyncBatchNorm).
  void set_batch_statistics_sum(RankSum sum);
  /// Whether a sum is set (set_batch_statistics_sum).
  bool synchronizes_batch_statistics() const { return static_cast<bool>(batch_sum_); }

 private:
  void ensure_batch(std::int64_t batch);
  std::int64_t input_features_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::int64_t> widths_;  ///< widths_[i]: input width of layer i; back(): output
  std::vector<Shape> shapes_;         ///< shapes_[i]: input shape of layer i (Note [layer shapes])
  bool training_ = true;
  std::uint64_t seed_ = 0;
  Replica replica_;
  std::int64_t training_rows_ = 0;
  RankSum batch_sum_;
  std::vector<std::vector<std::size_t>> layer_params_;
  std::uint64_t steps_ = 0;
  std::uint64_t training_steps_ = 0;
  std::uint64_t allocations_ = 0;
  Precision precision_ = Precision::kFp32;
  Rounding rounding_ = Rounding::kNearestEven;
  const Buffer* parameter_copy_ = nullptr;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cutrain::nn
