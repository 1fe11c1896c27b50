// Note [the step as one CUDA graph] (src/train/step_graph.hpp).
#include "src/train/step_graph.hpp"

#include <string>

#include "cutrain/error.hpp"
#include "cutrain/train/trainer.hpp"

namespace cutrain::train {

std::string cuda_graph_blocker(const nn::Sequential& model, const TrainerOptions& options) {
  // What the configuration asks for first, then the device: on the CPU the reasons a GPU run
  // would give are still said (and tested).
  if (options.communicator != nullptr && options.communicator->size() > 1)
    return "data parallelism (several ranks) is not captured yet";
  if (!model.device().is_cuda()) return "the model is on the CPU (CUDA graphs are a GPU feature)";
  return {};
}

namespace detail {

void StepGraph::stage(const data::Batch& b, NativeStream stream) {
  const Device device = b.x.device;
  const auto bytes = [](const Buffer& buffer) { return buffer.bytes(); };
  if (x_.bytes() != b.x.size() * sizeof(float)) {
    x_ = Buffer(b.x.size() * sizeof(float), device);
    labels_ = b.labels != nullptr
                  ? Buffer(static_cast<std::size_t>(b.rows) * sizeof(std::int32_t), device)
                  : Buffer();
    targets_ =
        b.targets.data != nullptr ? Buffer(b.targets.size() * sizeof(float), device) : Buffer();
  }
  fixed_ = b;
  fixed_.x.data = x_.as<float>();
  copy_bytes(x_.data(), device, b.x.data, device, bytes(x_), stream);
  if (b.labels != nullptr) {
    fixed_.labels = labels_.as<std::int32_t>();
    copy_bytes(labels_.data(), device, b.labels, device, bytes(labels_), stream);
  }
  if (b.targets.data != nullptr) {
    fixed_.targets.data = targets_.as<float>();
    copy_bytes(targets_.data(), device, b.targets.data, device, bytes(targets_), stream);
  }
}

std::size_t StepGraph::nodes() const {
  std::size_t n = 0;
  for (const Captured& c : graphs_) n += c.graph ? c.graph->nodes() : 0;
  return n;
}

const nn::Loss& StepGraph::run(Position at, const data::Batch& b, NativeStream stream,
                               nn::Sequential& model, optim::Optimizer& optimizer, const Work& work,
                               std::int64_t* work_count) {
  if (!failure_.empty()) return work(b);  // a capture failed: eager from then on
  if (captured() && generation_ != model.allocation_generation()) drop();  // pointers moved
  Captured& c = graphs_[static_cast<std::size_t>(at)];
  if (!c.graph && c.warm < kWarmupSteps) {
    ++c.warm;
    return work(b);
  }
  stage(b, stream);
  // Note [learning rate in device memory]: a changed lr reaches the block between replays, so
  // the captured step never holds the commit (its own commit_lr finds nothing changed).
  optimizer.commit_lr(stream);
  if (!c.graph) {
    const std::uint64_t forwards = model.forward_count();
    const std::uint64_t training_forwards = model.training_forward_count();
    const std::int64_t issued = optimizer.issued_steps();
    const std::int64_t counted = work_count != nullptr ? *work_count : 0;
    const nn::Loss* loss = nullptr;
    try {
      c.graph = std::make_unique<cutrain::detail::cuda::CapturedGraph>(
          stream, b.x.device.ordinal(), [&] { loss = &work(fixed_); });
    } catch (const Error& e) {
      if (required_) throw;
      // auto: the run goes on eagerly and says why. Capturing ran nothing on the device; undo
      // what the captured calls counted on the host, then run the batch.
      model.set_forward_count(forwards);
      model.set_training_forward_count(training_forwards);
      optimizer.add_issued_steps(issued - optimizer.issued_steps());
      if (work_count != nullptr) *work_count = counted;
      failure_ = e.what();
      drop();
      return work(b);
    }
    // Every run of the work is one training forward (Sequential::count_replayed_forward
    // advances by one), and evaluates nothing.
    CUTRAIN_CHECK(model.training_forward_count() == training_forwards + 1 &&
                      model.forward_count() == forwards + 1,
                  "StepGraph: the captured work ran ",
                  model.training_forward_count() - training_forwards,
                  " training forwards; a replay can count only one");
    c.loss = loss;
    generation_ = model.allocation_generation();
    c.issued = optimizer.issued_steps() - issued;
    c.counted = work_count != nullptr ? *work_count - counted : 0;
    ++captures_;
  } else {  // what the captured calls counted on the host
    model.count_replayed_forward();
    optimizer.add_issued_steps(c.issued);
    if (work_count != nullptr) *work_count += c.counted;
  }
  c.graph->launch(stream);
  ++launches_;
  return *c.loss;
}

std::string StepGraph::path(const std::string& blocker, bool graphed, std::int64_t replayed) const {
  if (!blocker.empty()) return "eager: " + blocker;
  if (!graphed) return "eager: cuda_graph = off";
  if (!failure_.empty()) return "eager: the capture failed: " + failure_;
  if (replayed == 0)
    return "eager: no full batch after the warm-up's " + std::to_string(kWarmupSteps) + " steps";
  return "graph";
}

}  // namespace detail
}  // namespace cutrain::train
