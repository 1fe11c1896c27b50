// The collective watchdog (Note [collective timeout] in src/dist/watchdog.hpp).
#include "src/dist/watchdog.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cutrain/error.hpp"
#include "src/core/numbers.hpp"

namespace cutrain::dist::detail {

namespace {
constexpr double kDefaultTimeoutS = 600;
constexpr int kExitCode = 3;
}  // namespace

double Watchdog::timeout_from_env() {
  const char* v = std::getenv("CUTRAIN_DIST_TIMEOUT_S");
  if (v == nullptr || *v == '\0') return kDefaultTimeoutS;
  const std::optional<double> parsed = cutrain::detail::parse_double(v);  // Note [numbers in files]
  const double t = parsed.value_or(0.0);
  CUTRAIN_CHECK(parsed.has_value() && t > 0 && t < 1e9, "CUTRAIN_DIST_TIMEOUT_S='", v,
                "' is not a number of seconds > 0 (unset it for the default, ", kDefaultTimeoutS,
                " s)");
  return t;
}

Watchdog::Watchdog(int rank, double timeout_s) : rank_(rank), timeout_s_(timeout_s) {
  CUTRAIN_CHECK(timeout_s > 0, "collective timeout ", timeout_s, " s must be > 0");
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Watchdog::Scope::Scope(Watchdog* w, const char* what) : w_(w) {
  if (w_ == nullptr) return;
  std::lock_guard<std::mutex> lock(w_->mutex_);
  w_->blocking_what_ = what;
  w_->blocking_since_ = Clock::now();
}

Watchdog::Scope::~Scope() {
  if (w_ == nullptr) return;
  std::lock_guard<std::mutex> lock(w_->mutex_);
  w_->blocking_what_.clear();
}

void Watchdog::enqueued(const char* what, Device device, NativeStream stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (event_.native() == nullptr) event_ = Event(device);
  event_.record(stream);
  device_what_ = what;
  device_since_ = Clock::now();
}

void Watchdog::fire(const std::string& what, double waited_s) const {
  std::fprintf(stderr,
               "cutrain: rank %d: %s has not completed after %.1f s: another rank has probably "
               "died or hung. Aborting this rank so that mpirun ends the job (the limit is "
               "CUTRAIN_DIST_TIMEOUT_S=%g).\n",
               rank_, what.c_str(), waited_s, timeout_s_);
  std::fflush(stderr);
  std::_Exit(kExitCode);
}

void Watchdog::run() {
  // Poll often enough that a short timeout (tests use 2-3 s) is honoured to ~10%.
  const auto period = std::chrono::duration<double>(std::min(1.0, timeout_s_ / 10));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, period);
    if (stop_) break;
    const auto now = Clock::now();
    if (!blocking_what_.empty()) {
      const double waited = std::chrono::duration<double>(now - blocking_since_).count();
      if (waited > timeout_s_) fire(blocking_what_, waited);
    }
    if (!device_what_.empty()) {
      bool done = false;
      try {
        done = event_.ready();
      } catch (const std::exception&) {
        done = true;  // a device error: the training thread reports it, not the watchdog
      }
      const double waited = std::chrono::duration<double>(now - device_since_).count();
      if (done)
        device_what_.clear();
      else if (waited > timeout_s_)
        fire(device_what_, waited);
    }
  }
}

}  // namespace cutrain::dist::detail
