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

StopOnSignal::StopOnSignal(train::Trainer& t) {
  g_trainer.store(&t);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

StopOnSignal::~StopOnSignal() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
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
