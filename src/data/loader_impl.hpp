#pragma once
// The loader's state, shared by src/data/loader.cpp (construction, the streaming path: a worker
// thread filling pinned slots) and src/data/loader_resident.cpp (Note [resident datasets]).

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/data/loader.hpp"
#include "cutrain/stream.hpp"

namespace cutrain::data {
namespace detail {

// A closable blocking queue of slot indices.
class SlotQueue {
 public:
  void push(int slot) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(slot);
    }
    cv_.notify_one();
  }
  // -1 once closed and empty.
  int pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return -1;
    const int slot = items_.front();
    items_.pop_front();
    return slot;
  }
  void close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  void reset() {
    std::lock_guard<std::mutex> lock(mu_);
    items_.clear();
    closed_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> items_;
  bool closed_ = false;
};

// Rows order[begin .. begin + rows) of the dataset into x (rows x features) and y (labels or
// targets) in host memory: the streaming worker's gather, and the resident CPU path's. `threads`
// > 1 splits the rows over an OpenMP team of at most that many (and at most OMP_NUM_THREADS)
// threads (Note [parallel gather]); the bytes are the same.
void gather_host(const Dataset& d, const std::vector<std::int64_t>& order, std::int64_t begin,
                 std::int64_t rows, float* x, unsigned char* y, int threads = 1);

}  // namespace detail

struct Loader::Impl {
  struct Slot {
    PinnedBuffer host;  // x, then labels or targets
    Buffer device;      // the same layout on the device (CUDA only)
    Event copied;       // recorded on the copy stream after the upload
    Event consumed;     // recorded on the compute stream when the caller moves on
    bool consumed_recorded = false;
    std::int64_t rows = 0;
    std::int64_t index = 0;
  };
  std::vector<Slot> slots;
  Stream copy_stream;
  detail::SlotQueue free_q, full_q;
  std::thread worker;
  std::exception_ptr error;
  std::mutex error_mu;
  std::atomic<bool> stop{false};
  int held = -1;                       // the slot handed out by the last next()
  NativeStream held_stream = nullptr;  // the compute stream that next() was given
  std::vector<std::int64_t> order;
  std::size_t x_bytes = 0, y_bytes = 0;

  // Note [resident datasets]: the dataset, the epoch's order and two batch buffers on the
  // device (the batch handed out stays valid while the next one is gathered into the other).
  struct Resident {
    Buffer x, y, order;
    Buffer batch[2];
    Event consumed[2];  // recorded on the caller's stream when it moves past the batch
    bool consumed_recorded[2] = {false, false};
    Event order_read;  // after the last gather that read `order` (it is rewritten per epoch)
    bool order_read_recorded = false;
    std::int64_t next = 0, total = 0;  // batches of the current epoch
    bool started = false;
  } res;
};

}  // namespace cutrain::data
