// Note [stop on a signal] (tools/run_hooks.hpp).
#include "tools/run_hooks.hpp"

#include <atomic>
#include <csignal>

#include <signal.h>
#include <unistd.h>

namespace cutrain::tools {
namespace {

std::atomic<train::Trainer*> g_trainer{nullptr};
std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_signal.store(sig);
  if (train::Trainer* t = g_trainer.load()) t->request_stop();
  const char msg[] = "\ncutrain-train: stopping after this step (again to abort)\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
}

}  // namespace

namespace {
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_before[3];  // the dispositions the handler replaced, restored after
}  // namespace

StopOnSignal::StopOnSignal(train::Trainer& t) {
  g_trainer.store(&t);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int k = 0; k < 3; ++k) {
    ::sigaction(kSignals[k], nullptr, &g_before[k]);
    // A hangup the user chose to ignore (nohup) stays ignored: the run goes on without its
    // terminal. (SIGINT is caught even where ignored - a script's background job - so that
    // `kill -INT` stops it as documented.)
    if (kSignals[k] == SIGHUP && g_before[k].sa_handler == SIG_IGN) continue;
    ::sigaction(kSignals[k], &sa, nullptr);
  }
}

StopOnSignal::~StopOnSignal() {
  for (int k = 0; k < 3; ++k) ::sigaction(kSignals[k], &g_before[k], nullptr);
  g_trainer.store(nullptr);
}

int StopOnSignal::received() {
  return g_signal.load();
}

void TimeToAccuracy::on_epoch_end(const train::EpochMetrics& m) {
  trained += m.seconds;
  per_epoch.push_back(trainer.evaluate_averaged(test).accuracy);
  if (epoch == 0 && per_epoch.back() >= goal) {
    epoch = m.epoch;
    seconds = trained;
    accuracy = per_epoch.back();
  }
}

}  // namespace cutrain::tools
