#pragma once
// Note [the step as one CUDA graph]: on a GPU the default MLP's step is about 20 launches that
// the host issues faster than nothing, so the host sets the pace (bench/RESULTS.md: 156-180 us
// an eager step against 114 us of device work replayed). The Trainer therefore captures one
// full batch's step - forward, loss, backward, the clip norm and guard, the optimizer step and
// the epoch record - once, after kWarmupSteps eager steps have sized every buffer, workspace
// and cache, and replays it for every later full batch: one cudaGraphLaunch a step.
//
// Nothing that changes from step to step is baked in: the learning rates, step counts, loss
// scale and skip flag live in the optimizer's step control block (Note [step control block]),
// Dropout's stream position in the model's forward count (Note [forward count in device
// memory]), the record slot beside the epoch's records (Note [epoch records on the device]);
// the batch is copied into fixed buffers on the stream before each replay (the loader's buffers
// rotate); a changed learning rate is committed between replays, outside the graph. The host's
// own counters (the model's forward counts, the optimizer's issued steps, the trainer's) are
// advanced per replay by what the captured calls advanced them by. So a replay runs the very
// kernels an eager step would, with the same arguments: the same bits (StepGraphGpu.
// GraphIsTheEagerRun).
//
// Under gradient accumulation (Note [gradient accumulation]) a batch's work depends on where it
// stands in its optimizer step: the first of a group starts the gradient sum, a middle one adds
// to it, the last one takes the mean and steps. So there is one graph per Position, each
// captured after its own kWarmupSteps eager runs (the first optimizer step, the first weight
// average are eager). The scalars the accumulator bakes in - the batch's rows, and for the last
// the group's total - are the same for every replay of a position, because only full batches
// replay and kLast replays only a group of accumulate_steps full batches; the epoch's last,
// shorter group ends eagerly.
//
// The last, shorter batch of an epoch runs eagerly (in the same buffers: Sequential's grow
// only). A batch larger than any before moves the model's buffers (Sequential::
// allocation_generation): the graphs are dropped and captured again after another warm-up.
// Weight averaging is captured after its first update (a copy) - the warm-up's - as the constant
// lerp it is from then on. What cannot be captured yet - several ranks, the CPU - runs eagerly;
// cuda_graph_blocker names it.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cutrain/buffer.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/nn/loss.hpp"
#include "cutrain/nn/sequential.hpp"
#include "cutrain/optim/optimizer.hpp"
#include "src/cuda/runtime.hpp"

namespace cutrain::train::detail {

class StepGraph {
 public:
  static constexpr int kWarmupSteps = 2;  ///< eager runs of a position before its capture
  /// Where a batch stands in its optimizer step, which decides its device work: kWhole, a step
  /// of one batch; under gradient accumulation kFirst, kMiddle and kLast of a group.
  enum class Position { kWhole, kFirst, kMiddle, kLast };
  /// One batch's device work, returning the loss it computed.
  using Work = std::function<const nn::Loss&(const data::Batch&)>;

  /// Runs `work` on the full batch `b` at position `at`: eagerly while that position warms up,
  /// captured then launched the first time, replayed after. A replay advances the host counts
  /// the model's and optimizer's calls in `work` advanced during the capture, and `work_count`
  /// (a count of the caller's that `work` may advance, or null) alike; a discarded capture puts
  /// them all back.
  const nn::Loss& run(Position at, const data::Batch& b, NativeStream stream, nn::Sequential& model,
                      optim::Optimizer& optimizer, const Work& work,
                      std::int64_t* work_count = nullptr);
  /// Drops the graphs (their buffers are about to be replaced) and starts a new warm-up.
  /// `required`: a failed capture throws (cuda_graph = on); otherwise the run goes on eagerly
  /// and failure() says why.
  void reset(bool required) {
    drop();
    required_ = required;
    failure_.clear();
  }
  const std::string& failure() const { return failure_; }  ///< why a capture failed, or empty
  std::int64_t captures() const { return captures_; }      ///< graphs captured
  std::int64_t launches() const { return launches_; }      ///< batches run from a graph
  std::size_t nodes() const;                               ///< in the current graphs together
  /// FitResult::step_path: "graph", or "eager: " and why - `blocker` (cuda_graph_blocker's
  /// answer), graphs turned off (`!graphed`), a failed capture, or no batch replayed
  /// (`replayed`: the fit's launches).
  std::string path(const std::string& blocker, bool graphed, std::int64_t replayed) const;

 private:
  // A position's graph and what one run of its work advances on the host, measured at capture.
  struct Captured {
    std::unique_ptr<cutrain::detail::cuda::CapturedGraph> graph;
    const nn::Loss* loss = nullptr;  // what the captured work's loss object is
    int warm = 0;                    // eager runs so far
    std::int64_t issued = 0;         // the optimizer's issued steps
    std::int64_t counted = 0;        // the caller's work_count
  };
  bool captured() const {
    for (const Captured& c : graphs_)
      if (c.graph) return true;
    return false;
  }
  void drop() {  // the graphs and their warm-up counts
    for (Captured& c : graphs_) c = Captured{};
  }
  void stage(const data::Batch& b, NativeStream stream);  // b into the fixed batch
  std::array<Captured, 4> graphs_;
  std::uint64_t generation_ = 0;  // the model's allocation_generation() at the captures
  bool required_ = false;
  std::string failure_;
  Buffer x_, labels_, targets_;
  data::Batch fixed_;
  std::int64_t captures_ = 0, launches_ = 0;
};

/// The graph a batch of `rows` replays (Note [the step as one CUDA graph]), or none (eager):
/// its position in the optimizer step - `begins` / `ends` a step, after `rows_before` rows of
/// the step's earlier batches - for a full batch whose position's work is always the same; a
/// group's last only when the group is `accumulate` full batches (its mean's divisor as
/// captured).
inline std::optional<StepGraph::Position> graph_position(bool begins, bool ends, std::int64_t rows,
                                                         std::int64_t rows_before,
                                                         std::int64_t batch_size,
                                                         std::int64_t accumulate) {
  using Position = StepGraph::Position;
  if (rows != batch_size) return std::nullopt;
  if (begins) return ends ? Position::kWhole : Position::kFirst;
  if (!ends) return Position::kMiddle;
  if (rows_before + rows == accumulate * batch_size) return Position::kLast;
  return std::nullopt;
}

}  // namespace cutrain::train::detail
