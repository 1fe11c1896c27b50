#pragma once
// The CPU backend's element-wise loop: the twin of the kernels' grid-stride loop. The body calls
// the same CUTRAIN_HD rule as the kernel; `omp simd` lets g++ vectorize it.

#include <cstddef>

namespace cutrain::cpu {

// Below this many elements a parallel region costs more than it saves.
inline constexpr std::size_t kParallelThreshold = 1 << 15;

template <class Body>
void parallel_for(std::size_t n, const Body& body) {
  const auto count = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel if (n >= kParallelThreshold)
  {
    // A per-thread copy of the body: its captures become locals that no store in the loop can
    // alias, so g++ hoists them and vectorizes (through the shared object it would not).
    const Body local = body;
#pragma omp for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < count; ++i) local(static_cast<std::size_t>(i));
  }
}

// One iteration per row (a plane, a lowered row: each a loop of its own), rows split over the
// threads in contiguous static blocks. Rows are independent, so the split changes no result.
template <class Body>
void parallel_rows(std::size_t rows, const Body& body) {
  const auto count = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel for schedule(static) if (rows > 1)
  for (std::ptrdiff_t r = 0; r < count; ++r) body(static_cast<std::size_t>(r));
}

// parallel_rows for rows of `row_elements` values each (a channel, a block of columns): one
// thread where all the rows together hold fewer than kParallelThreshold values. parallel_for's
// threshold counts iterations, so a loop over 32 channels of 100,000 values each ran on one
// thread - BatchNorm2d's passes, a quarter of the default CNN's CPU step, while the other core
// waited. A per-thread copy of the body, as in parallel_for.
template <class Body>
void parallel_rows(std::size_t rows, std::size_t row_elements, const Body& body) {
  const auto count = static_cast<std::ptrdiff_t>(rows);
#pragma omp parallel if (rows > 1 && rows * row_elements >= kParallelThreshold)
  {
    const Body local = body;
#pragma omp for schedule(static)
    for (std::ptrdiff_t r = 0; r < count; ++r) local(static_cast<std::size_t>(r));
  }
}

}  // namespace cutrain::cpu
