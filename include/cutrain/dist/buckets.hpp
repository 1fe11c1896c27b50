#pragma once
// Note [gradient buckets]
// Data parallelism's all-reduce can overlap backward: backward produces the gradients of the
// last layer first, so those can travel while the earlier layers still compute (PyTorch DDP's
// buckets). The gradient arena is grouped (weights, then biases and normalization parameters;
// Note [arena layout]) and within a group tensors lie in layer order, so the gradients of
// layers k..L-1 are, in each group, one contiguous suffix. A bucket is therefore one range per
// group: cut where a layer boundary is reached with at least `bucket_elements` elements
// gathered since the last cut, the last bucket (at layer 0) taking the rest, padding included.
// The buckets' ranges cover every group's span exactly once.

#include <cstddef>
#include <vector>

#include "cutrain/arena.hpp"

namespace cutrain::dist {

/// A range of arena elements [begin, end).
struct ArenaRange {
  /// [begin, end) in elements.
  std::size_t begin = 0, end = 0;                      ///< elements
  bool operator==(const ArenaRange&) const = default;  ///< same range
};

/// Gradient ranges all-reduced together once a given layer's backward has run (PyTorch DDP's
/// buckets).
struct GradientBucket {
  std::size_t ready_after_layer = 0;  ///< launch once this layer's backward has run
  std::vector<ArenaRange> ranges;     ///< at most one per group, ascending
};

/// layer_tensors[k]: indices into layout.tensors() of layer k's tensors (layers without
/// parameters have none). Buckets come in launch order (last layer first).
std::vector<GradientBucket> plan_buckets(const ArenaLayout& layout,
                                         const std::vector<std::vector<std::size_t>>& layer_tensors,
                                         std::size_t bucket_elements);

}  // namespace cutrain::dist
