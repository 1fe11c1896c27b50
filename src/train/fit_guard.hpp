#pragma once
// Note [a fit that throws] (cutrain/train/trainer.hpp): an exception that leaves fit() between
// running() - an epoch under way, the model moving past state_ - and recorded() - state_
// describes the model again - records the epoch in `torn_epoch`, which the next fit() refuses on.
#include <cstdint>
#include <exception>

namespace cutrain::train::detail {

class TornGuard {
 public:
  explicit TornGuard(std::int64_t& torn_epoch) : torn_epoch_(torn_epoch) {}
  ~TornGuard() {
    if (epoch_ >= 0 && std::uncaught_exceptions() > uncaught_) torn_epoch_ = epoch_ + 1;
  }
  TornGuard(const TornGuard&) = delete;
  TornGuard& operator=(const TornGuard&) = delete;
  void running(std::int64_t epoch) { epoch_ = epoch; }
  void recorded() { epoch_ = -1; }

 private:
  std::int64_t& torn_epoch_;
  std::int64_t epoch_ = -1;
  int uncaught_ = std::uncaught_exceptions();
};

}  // namespace cutrain::train::detail
