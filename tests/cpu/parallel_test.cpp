// The CPU backend's loops (src/cpu/parallel.hpp): every iteration runs once, and the rows are
// split over the threads when - and only when - they hold enough values together.
#include "src/cpu/parallel.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <set>
#include <vector>

namespace cutrain::cpu {
namespace {

// The threads that ran `rows` rows of `row_elements` values, and how often each row ran.
struct RowsRun {
  std::set<int> threads;
  std::vector<int> visits;
};
RowsRun run_rows(std::size_t rows, std::size_t row_elements) {
  std::vector<int> thread_of(rows, -1), visits(rows, 0);
  int* t = thread_of.data();
  int* v = visits.data();
  parallel_rows(rows, row_elements, [=](std::size_t r) {
    t[r] = omp_get_thread_num();
    ++v[r];  // each row is one iteration: no two threads touch the same element
  });
  return {std::set<int>(thread_of.begin(), thread_of.end()), visits};
}

TEST(ParallelRows, RunsEveryRowOnce) {
  for (const std::size_t rows : {1U, 2U, 3U, 32U, 1000U}) {
    const RowsRun r = run_rows(rows, kParallelThreshold);
    EXPECT_EQ(r.visits, std::vector<int>(rows, 1)) << rows << " rows";
  }
  EXPECT_TRUE(run_rows(0, kParallelThreshold).visits.empty());
}

// BatchNorm2d's shape in the default CNN: 32 channels of 128 x 28 x 28 values. parallel_for
// counted the 32 iterations against its threshold and ran them on one thread.
TEST(ParallelRows, SplitsFewRowsOfManyValuesOverTheThreads) {
  if (omp_get_max_threads() < 2) GTEST_SKIP() << "one OpenMP thread (OMP_NUM_THREADS=1)";
  const RowsRun r = run_rows(32, 128 * 28 * 28);
  EXPECT_EQ(r.threads.size(), static_cast<std::size_t>(std::min(omp_get_max_threads(), 32)));
}

TEST(ParallelRows, KeepsRowsOfFewValuesOnOneThread) {
  const RowsRun below = run_rows(8, kParallelThreshold / 8 - 1);
  EXPECT_EQ(below.threads, std::set<int>{0});
  EXPECT_EQ(run_rows(1, 10 * kParallelThreshold).threads, std::set<int>{0});  // one row
}

}  // namespace
}  // namespace cutrain::cpu
