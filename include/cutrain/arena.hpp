#pragma once
// Parameter arenas: all tensors of one kind (parameters, gradients, one optimizer state) live in
// one contiguous float32 buffer; a tensor is a named view (offset + shape) into it.
//
// Note [arena layout]: every tensor starts on a kArenaAlignment-element (256-byte) boundary and
// the total is padded to a multiple of it. Padding elements are zero and stay zero under every
// element-wise rule cutrain runs (a zero gradient with a zero parameter gives a zero update), so
// a step, a norm or a copy is one operation over the whole span, with aligned 16-byte vector
// loads and no scalar tail. Tensors are grouped (e.g. "decay" and "no_decay" parameter groups);
// each group occupies one contiguous, aligned range, so per-group hyperparameters still take one
// launch. The layout is shared (std::shared_ptr) by the parameter, gradient and state arenas.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/device.hpp"

namespace cutrain {

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& shape);  ///< "[128, 784]"
std::int64_t numel(const Shape& shape);     ///< the product of the dimensions (1 for [])

inline constexpr std::size_t kArenaAlignment = 64;  ///< elements (256 bytes of float32)

/// One tensor of an arena: its name, shape, element count, offset and parameter group.
struct TensorSpec {
  std::string name;        ///< e.g. "layers.0.weight"
  Shape shape;             ///< e.g. [out, in]
  std::size_t numel = 0;   ///< the product of shape
  std::size_t offset = 0;  ///< in elements from the arena's start
  int group = 0;           ///< the parameter group (per-group lr and weight decay)
};

/// The aligned element range one parameter group occupies in an arena.
struct GroupRange {
  int group = 0;          ///< the group's id
  std::size_t begin = 0;  ///< elements, aligned
  std::size_t end = 0;    ///< elements, aligned; end - begin is a multiple of kArenaAlignment
};

/// The names, shapes and offsets of every tensor in an arena (Note [arena layout]); shared by a
/// model's parameter, gradient and optimizer-state arenas.
class ArenaLayout {
 public:
  /// Collects tensors, then assigns their aligned offsets group by group.
  class Builder {
   public:
    /// Adds a tensor; returns its index (insertion order). Names must be unique and non-empty,
    /// dimensions positive, group >= 0.
    std::size_t add(std::string name, Shape shape, int group = 0);
    /// Offsets are assigned group by group (ascending group id), insertion order within a group.
    std::shared_ptr<const ArenaLayout> build() const;

   private:
    std::vector<TensorSpec> specs_;
  };

  const std::vector<TensorSpec>& tensors() const { return tensors_; }  ///< in insertion order
  const std::vector<GroupRange>& groups() const { return groups_; }    ///< ascending group id
  std::size_t size() const { return tensors_.size(); }                 ///< number of tensors
  std::size_t total() const { return total_; }  ///< padded element count of the whole arena
  std::size_t parameter_count() const;          ///< sum of numel, padding excluded
  std::optional<std::size_t> find(std::string_view name) const;  ///< the tensor's index, if any
  const TensorSpec& at(std::string_view name) const;  ///< throws cutrain::Error if absent

  /// Same names, shapes, groups and offsets.
  bool operator==(const ArenaLayout& other) const;

 private:
  std::vector<TensorSpec> tensors_;  ///< in insertion order
  std::vector<GroupRange> groups_;   ///< ascending group id
  std::size_t total_ = 0;
};

/// A non-owning view of one tensor (or a whole arena) on a device.
struct TensorView {
  float* data = nullptr;  ///< device memory on `device`
  Shape shape;            ///< the tensor's shape (flat [total] for a whole arena)
  std::size_t numel = 0;  ///< elements
  Device device;          ///< where `data` lives
};

/// One contiguous float32 buffer holding every tensor of an ArenaLayout; tensors are views into it.
class Arena {
 public:
  Arena() = default;
  /// Allocates layout->total() floats on `device`, zero-filled.
  Arena(std::shared_ptr<const ArenaLayout> layout, Device device);

  /// A zero-filled arena with the same layout and device (gradients, optimizer state).
  Arena like() const { return Arena(layout_, device()); }
  Arena copy_to(Device device) const;  ///< the same layout and values on `device`
  /// Copies all values from `src` (any device). Throws unless the layouts are equal.
  void copy_from(const Arena& src);
  void zero();  ///< every element, padding included, to 0

  const ArenaLayout& layout() const { return *layout_; }  ///< what is where
  /// The shared layout (a twin arena shares it).
  const std::shared_ptr<const ArenaLayout>& layout_ptr() const { return layout_; }
  Device device() const { return buffer_.device(); }  ///< where the buffer lives
  /// Elements in the buffer, padding included (0 for an empty arena).
  std::size_t total() const { return layout_ ? layout_->total() : 0; }
  float* data() { return buffer_.as<float>(); }              ///< the whole buffer (device memory)
  const float* data() const { return buffer_.as<float>(); }  ///< the whole buffer (device memory)

  TensorView view(std::size_t index);      ///< tensor `index` of the layout
  TensorView view(std::string_view name);  ///< the named tensor; throws cutrain::Error if absent
  TensorView span();                       ///< the whole arena, padding included, as a flat tensor

  /// Host round trips (tests, checkpoints). The vector is total() long, padding included.
  std::vector<float> to_host() const;
  void from_host(std::span<const float> values);  ///< values: total() long, padding included
  std::vector<float> tensor_to_host(std::string_view name) const;  ///< one tensor's numel values
  /// One tensor's values (numel of them) from the host.
  void tensor_from_host(std::string_view name, std::span<const float> values);

 private:
  std::shared_ptr<const ArenaLayout> layout_;
  Buffer buffer_;
};

/// Throws cutrain::Error naming `what` unless the two arenas share a layout and a device.
void require_same_layout(const Arena& a, const Arena& b, const char* what);

}  // namespace cutrain
