#include "cutrain/arena.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#include "cutrain/error.hpp"

namespace cutrain {
namespace {

constexpr std::size_t align_up(std::size_t n) {
  return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

// An arena larger than this cannot be addressed in bytes without overflow; no GPU holds it.
constexpr std::size_t kMaxElements = std::numeric_limits<std::size_t>::max() / 16;

}  // namespace

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) n *= d;
  return n;
}

std::size_t ArenaLayout::Builder::add(std::string name, Shape shape, int group) {
  CUTRAIN_CHECK(!name.empty(), "arena tensor names must be non-empty");
  CUTRAIN_CHECK(group >= 0, "tensor '", name, "': group ", group, " must be >= 0");
  for (const TensorSpec& s : specs_)
    CUTRAIN_CHECK(s.name != name, "tensor name '", name, "' is used twice in one arena");
  std::size_t numel = 1;
  for (const std::int64_t d : shape) {
    CUTRAIN_CHECK(d > 0, "tensor '", name, "' has shape ", shape_str(shape),
                  ": every dimension must be positive");
    CUTRAIN_CHECK(static_cast<std::size_t>(d) <= kMaxElements / numel, "tensor '", name,
                  "' with shape ", shape_str(shape), " is too large to address");
    numel *= static_cast<std::size_t>(d);
  }
  specs_.push_back(TensorSpec{std::move(name), std::move(shape), numel, 0, group});
  return specs_.size() - 1;
}

std::shared_ptr<const ArenaLayout> ArenaLayout::Builder::build() const {
  auto layout = std::make_shared<ArenaLayout>();
  layout->tensors_ = specs_;
  std::vector<std::size_t> order(specs_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return specs_[a].group < specs_[b].group; });
  std::size_t offset = 0;
  for (const std::size_t i : order) {
    TensorSpec& spec = layout->tensors_[i];
    if (layout->groups_.empty() || layout->groups_.back().group != spec.group)
      layout->groups_.push_back(GroupRange{spec.group, offset, offset});
    spec.offset = offset;
    CUTRAIN_CHECK(spec.numel <= kMaxElements - offset, "arena too large to address");
    offset += align_up(spec.numel);
    layout->groups_.back().end = offset;
  }
  layout->total_ = offset;
  return layout;
}

std::size_t ArenaLayout::parameter_count() const {
  std::size_t n = 0;
  for (const TensorSpec& s : tensors_) n += s.numel;
  return n;
}

std::optional<std::size_t> ArenaLayout::find(std::string_view name) const {
  for (std::size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].name == name) return i;
  return std::nullopt;
}

const TensorSpec& ArenaLayout::at(std::string_view name) const {
  const auto i = find(name);
  CUTRAIN_CHECK(i.has_value(), "no tensor named '", name, "' in this arena (", tensors_.size(),
                " tensors)");
  return tensors_[*i];
}

bool ArenaLayout::operator==(const ArenaLayout& other) const {
  if (this == &other) return true;
  if (total_ != other.total_ || tensors_.size() != other.tensors_.size()) return false;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const TensorSpec& a = tensors_[i];
    const TensorSpec& b = other.tensors_[i];
    if (a.name != b.name || a.shape != b.shape || a.offset != b.offset || a.group != b.group)
      return false;
  }
  return true;
}

Arena::Arena(std::shared_ptr<const ArenaLayout> layout, Device device)
    : layout_(std::move(layout)) {
  CUTRAIN_CHECK(layout_ != nullptr, "Arena needs a layout (ArenaLayout::Builder::build())");
  buffer_ = Buffer(layout_->total() * sizeof(float), device);
  buffer_.zero();
}

Arena Arena::copy_to(Device device) const {
  Arena out(layout_, device);
  out.copy_from(*this);
  return out;
}

void Arena::copy_from(const Arena& src) {
  CUTRAIN_CHECK(layout_ && src.layout_ && *layout_ == *src.layout_,
                "Arena::copy_from: the source arena has a different layout");
  copy_bytes(data(), device(), src.data(), src.device(), total() * sizeof(float));
}

void Arena::zero() {
  buffer_.zero();
}

TensorView Arena::view(std::size_t index) {
  CUTRAIN_CHECK(layout_ && index < layout_->size(), "arena view index ", index, " out of range (",
                layout_ ? layout_->size() : 0, " tensors)");
  const TensorSpec& s = layout_->tensors()[index];
  return TensorView{data() + s.offset, s.shape, s.numel, device()};
}

TensorView Arena::view(std::string_view name) {
  CUTRAIN_CHECK(layout_ != nullptr, "view of an empty arena");
  const TensorSpec& s = layout_->at(name);
  return TensorView{data() + s.offset, s.shape, s.numel, device()};
}

TensorView Arena::span() {
  const std::size_t n = total();
  return TensorView{data(), Shape{static_cast<std::int64_t>(n)}, n, device()};
}

std::vector<float> Arena::to_host() const {
  std::vector<float> out(total());
  copy_bytes(out.data(), Device::cpu(), data(), device(), out.size() * sizeof(float));
  return out;
}

void Arena::from_host(std::span<const float> values) {
  CUTRAIN_CHECK(values.size() == total(), "Arena::from_host: got ", values.size(),
                " values for an arena of ", total(), " elements (padding included)");
  copy_bytes(data(), device(), values.data(), Device::cpu(), values.size() * sizeof(float));
}

std::vector<float> Arena::tensor_to_host(std::string_view name) const {
  CUTRAIN_CHECK(layout_ != nullptr, "tensor_to_host on an empty arena");
  const TensorSpec& s = layout_->at(name);
  std::vector<float> out(s.numel);
  copy_bytes(out.data(), Device::cpu(), data() + s.offset, device(), s.numel * sizeof(float));
  return out;
}

void Arena::tensor_from_host(std::string_view name, std::span<const float> values) {
  CUTRAIN_CHECK(layout_ != nullptr, "tensor_from_host on an empty arena");
  const TensorSpec& s = layout_->at(name);
  CUTRAIN_CHECK(values.size() == s.numel, "tensor '", name, "' has ", s.numel, " elements (shape ",
                shape_str(s.shape), ") but ", values.size(), " were given");
  copy_bytes(data() + s.offset, device(), values.data(), Device::cpu(),
             values.size() * sizeof(float));
}

namespace {

// The first difference between two layouts, for an error message.
std::string layout_difference(const ArenaLayout& a, const ArenaLayout& b) {
  const auto& ta = a.tensors();
  const auto& tb = b.tensors();
  for (std::size_t i = 0; i < std::min(ta.size(), tb.size()); ++i)
    if (ta[i].name != tb[i].name || ta[i].shape != tb[i].shape || ta[i].group != tb[i].group ||
        ta[i].offset != tb[i].offset)
      return "tensor " + std::to_string(i) + " is '" + ta[i].name + "' " + shape_str(ta[i].shape) +
             " group " + std::to_string(ta[i].group) + " vs '" + tb[i].name + "' " +
             shape_str(tb[i].shape) + " group " + std::to_string(tb[i].group);
  return std::to_string(ta.size()) + " tensors vs " + std::to_string(tb.size());
}

}  // namespace

void require_same_layout(const Arena& a, const Arena& b, const char* what) {
  CUTRAIN_CHECK(a.total() > 0 && b.total() > 0, what, ": arena is empty");
  CUTRAIN_CHECK(a.layout() == b.layout(), what, ": the arenas have different layouts (",
                layout_difference(a.layout(), b.layout()),
                "); make one from the other with like()");
  CUTRAIN_CHECK(a.device() == b.device(), what, ": arenas live on different devices (",
                a.device().str(), " and ", b.device().str(), ")");
}

}  // namespace cutrain
