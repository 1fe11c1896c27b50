// Bucket planning (Note [gradient buckets], include/cutrain/dist/buckets.hpp).
#include "cutrain/dist/buckets.hpp"

#include <algorithm>
#include <map>

#include "cutrain/error.hpp"

namespace cutrain::dist {

std::vector<GradientBucket> plan_buckets(const ArenaLayout& layout,
                                         const std::vector<std::vector<std::size_t>>& layer_tensors,
                                         std::size_t bucket_elements) {
  CUTRAIN_CHECK(bucket_elements > 0, "plan_buckets: the bucket size must be > 0 elements");
  const auto& tensors = layout.tensors();
  // Each group's current cut: what lies at or above it is already in a bucket.
  std::map<int, std::size_t> cut, begin;
  for (const GroupRange& g : layout.groups()) {
    cut[g.group] = g.end;
    begin[g.group] = g.begin;
  }
  std::size_t seen = 0;
  for (const auto& layer : layer_tensors)
    for (const std::size_t t : layer) {
      CUTRAIN_CHECK(t < tensors.size(), "plan_buckets: tensor index ", t, " out of range");
      ++seen;
    }
  CUTRAIN_CHECK(seen == tensors.size(), "plan_buckets: the layers list ", seen, " tensors but the ",
                "arena has ", tensors.size());
  std::vector<GradientBucket> buckets;
  std::size_t gathered = 0;
  std::map<int, std::size_t> lowest = cut;  // lowest offset per group gathered since the cut
  for (std::size_t k = layer_tensors.size(); k-- > 0;) {
    for (const std::size_t t : layer_tensors[k]) {
      gathered += tensors[t].numel;
      std::size_t& low = lowest[tensors[t].group];
      low = std::min(low, tensors[t].offset);
    }
    if ((gathered < bucket_elements || gathered == 0) && k != 0) continue;
    GradientBucket b;
    b.ready_after_layer = k;
    for (auto& [group, c] : cut) {
      const std::size_t from = k == 0 ? begin[group] : lowest[group];
      if (from < c) b.ranges.push_back({from, c});
      c = from;
    }
    if (!b.ranges.empty()) buckets.push_back(std::move(b));
    gathered = 0;
    lowest = cut;
  }
  return buckets;
}

}  // namespace cutrain::dist
