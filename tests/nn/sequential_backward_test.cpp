// Sequential::backward runs only what some gradient needs: the layers below the first one with
// parameters are not run backward and that layer writes no input gradient - unless the caller
// asks for the input's gradient - and every layer is still reported done (the gradient buckets
// wait on each).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cutrain/nn.hpp"
#include "nn_fixture.hpp"

namespace cutrain::nn {
namespace {

using testing::DeviceMatrix;
using testing::to_host;

// y = x (host loops: a CPU-only layer); records each backward call and whether it had a dx.
class Probe final : public Layer {
 public:
  explicit Probe(std::vector<std::string>* log, std::string name)
      : log_(log), name_(std::move(name)) {}
  std::string kind() const override { return "Probe"; }
  void forward(LayerContext& /*ctx*/, const Matrix& x, Matrix& y) override {
    for (std::size_t i = 0; i < x.size(); ++i) y.data[i] = x.data[i];
  }
  void backward(LayerContext& /*ctx*/, const Matrix& /*x*/, const Matrix& /*y*/, const Matrix& dy,
                Matrix& dx) override {
    log_->push_back(name_ + (dx.data != nullptr ? " dx" : " no dx"));
    if (dx.data == nullptr) return;
    for (std::size_t i = 0; i < dy.size(); ++i) dx.data[i] = dy.data[i];
  }

 private:
  std::vector<std::string>* log_;
  std::string name_;
};

TEST(SequentialBackward, SkipsTheInputGradientsNoParameterNeeds) {
  std::vector<std::string> log;
  Sequential m(3);
  m.emplace<Probe>(&log, "a").emplace<Probe>(&log, "b");
  m.emplace<Linear>(3, 2).emplace<Probe>(&log, "c");
  m.build(Device::cpu(), 7);
  const std::vector<float> w = m.parameters().tensor_to_host("layers.2.weight");  // [2, 3]
  const std::vector<float> xs = {1.0F, -2.0F, 0.5F, 3.0F, 0.25F, -1.0F};
  const std::vector<float> dys = {0.5F, -1.5F, 2.0F, 0.75F};
  DeviceMatrix x(xs, 2, 3, Device::cpu()), dy(dys, 2, 2, Device::cpu()), dx(2, 3, Device::cpu());
  std::vector<std::size_t> done;
  const auto record = [&](std::size_t k) { done.push_back(k); };

  m.forward(x.m);
  m.backward(dy.m, nullptr, nullptr, record);
  EXPECT_EQ(log, (std::vector<std::string>{"c dx"}));  // a and b not run; the Linear has no dx
  EXPECT_EQ(done, (std::vector<std::size_t>{3, 2, 1, 0}));
  const std::vector<float> dw = m.gradients().tensor_to_host("layers.2.weight");
  const std::vector<float> db = m.gradients().tensor_to_host("layers.2.bias");
  // dW[o, i] = sum over rows of dy[r, o] x[r, i]; db[o] = sum of dy[r, o].
  for (std::size_t o = 0; o < 2; ++o) {
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_FLOAT_EQ(dw[o * 3 + i], dys[o] * xs[i] + dys[2 + o] * xs[3 + i]);
    EXPECT_FLOAT_EQ(db[o], dys[o] + dys[2 + o]);
  }

  log.clear();
  done.clear();
  m.forward(x.m);
  m.backward(dy.m, nullptr, &dx.m, record);  // the input's gradient asked for: every layer runs
  EXPECT_EQ(log, (std::vector<std::string>{"c dx", "b dx", "a dx"}));
  EXPECT_EQ(done, (std::vector<std::size_t>{3, 2, 1, 0}));
  EXPECT_EQ(m.gradients().tensor_to_host("layers.2.weight"), dw);
  EXPECT_EQ(m.gradients().tensor_to_host("layers.2.bias"), db);
  const std::vector<float> g = to_host(dx.m);  // dx[r, i] = sum over o of dy[r, o] W[o, i]
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_FLOAT_EQ(g[r * 3 + i], dys[r * 2] * w[i] + dys[r * 2 + 1] * w[3 + i]);
}

}  // namespace
}  // namespace cutrain::nn
