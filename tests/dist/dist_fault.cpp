// A rank that fails mid-run (run by tests/dist/fault_test.sh under `mpirun -np 2`):
//   dist_fault kill   rank 1 SIGKILLs itself at its 5th step: mpirun must end the job
//   dist_fault hang   rank 1 stops calling collectives at its 5th step (sleeps): rank 0's
//                     watchdog must end the job after CUTRAIN_DIST_TIMEOUT_S
// Rank 0 trains on normally; neither case may hang. Exit 0 means a failure went unnoticed.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "cutrain/data.hpp"
#include "cutrain/dist/communicator.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train.hpp"

namespace {

class FailAt final : public cutrain::train::Callback {
 public:
  FailAt(int rank, bool kill) : rank_(rank), kill_(kill) {}
  void on_batch_end(std::int64_t epoch, std::int64_t batch) override {
    if (rank_ != 1 || epoch != 1 || batch != 5) return;
    std::fprintf(stderr, "dist_fault: rank 1 %s at step 5\n", kill_ ? "is killed" : "hangs");
    std::fflush(stderr);
    if (kill_) std::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::hours(1));
  }

 private:
  int rank_;
  bool kill_;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace cutrain;
  if (argc != 2 || (std::strcmp(argv[1], "kill") != 0 && std::strcmp(argv[1], "hang") != 0)) {
    std::fprintf(stderr, "usage: dist_fault kill|hang (under mpirun -np 2)\n");
    return 2;
  }
  dist::Communicator& world = dist::Communicator::world();
  data::Dataset d;
  d.rows = 4096;
  d.features = 8;
  d.classes = 2;
  std::mt19937 rng(1);
  std::normal_distribution<float> noise;
  for (std::int64_t r = 0; r < d.rows; ++r) {
    for (int f = 0; f < 8; ++f) d.x.push_back(noise(rng) + static_cast<float>(r % 2));
    d.labels.push_back(static_cast<std::int32_t>(r % 2));
  }
  nn::Sequential m(8);
  m.emplace<nn::Linear>(8, 8).emplace<nn::Activation>(nn::Activation::Kind::kRelu);
  m.emplace<nn::Linear>(8, 2);
  m.build(Device::cpu(), 1);
  optim::Sgd opt(m.parameters(), {.lr = 0.1F});
  train::TrainerOptions o;
  o.epochs = 1000;  // far longer than the test waits: only the failure may end it
  o.batch_size = 32;
  o.progress = false;
  o.communicator = &world;
  train::Trainer t(m, opt, o);
  t.add_callback(std::make_shared<FailAt>(world.rank(), std::strcmp(argv[1], "kill") == 0));
  t.fit(d);
  std::fprintf(stderr, "dist_fault: rank %d finished 1000 epochs; the failure went unnoticed\n",
               world.rank());
  return 0;
}
