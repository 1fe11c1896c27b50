// Note [augmentation on the device] in a training run: the step trains on the augmented batch
// (one SGD step against the formula, on images built the long way), evaluation sees the data
// as it is, the same seed gives the same run, and a resume - at an epoch boundary or mid-epoch -
// continues with the images the uninterrupted run drew.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "kernels/data/augment.cuh"
#include "support/errors.hpp"
#include "support/gpu.hpp"
#include "train/trainer_fixture.hpp"

namespace cutrain::train {
namespace {

using namespace testing_fixture;

// 12 images of 2 x 3 x 4 in 3 classes, values in [0.5, 1.5) (a zero fill is visible).
data::Dataset images() {
  data::Dataset d;
  d.rows = 12;
  d.features = 24;
  d.classes = 3;
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> u(0.5F, 1.5F);
  for (std::int64_t r = 0; r < d.rows; ++r) {
    for (std::int64_t f = 0; f < d.features; ++f) d.x.push_back(u(gen));
    d.labels.push_back(static_cast<std::int32_t>(r % 3));
  }
  return d;
}

// The row padded with `shift` zeros, cropped at (dy + shift, dx + shift), mirrored if drawn
// (torchvision's RandomCrop(padding=), RandomHorizontalFlip()).
std::vector<double> transformed(const float* row, std::int64_t c, std::int64_t h, std::int64_t w,
                                std::int32_t shift, const rules::AugmentDraw& d) {
  std::vector<double> out(static_cast<std::size_t>(c * h * w), 0.0);
  const std::int64_t wp = w + 2 * shift, hp = h + 2 * shift;
  std::vector<double> padded(static_cast<std::size_t>(c * hp * wp), 0.0);
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j)
        padded[static_cast<std::size_t>((k * hp + i + shift) * wp + j + shift)] =
            row[(k * h + i) * w + j];
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j)
        out[static_cast<std::size_t>((k * h + i) * w + (d.flip ? w - 1 - j : j))] =
            padded[static_cast<std::size_t>((k * hp + i + d.dy + shift) * wp + j + d.dx + shift)];
  return out;
}

// One batch an epoch, a plain SGD step of a Linear layer per epoch: W' = W - lr (1/B) sum_r
// (p_r - y_r) a_r^T over the augmented rows a_r, b' = b - lr (1/B) sum_r (p_r - y_r),
// p = softmax(W a + b) - in double, from rows this test builds itself with each epoch's draws.
TEST(Trainer, StepsOnTheAugmentedBatch) {
  const data::Dataset d = images();
  const std::int32_t shift = 1;
  nn::Sequential m(24);
  m.emplace<nn::Linear>(24, 3);
  m.build(Device::cpu(), 5);
  const std::vector<float> w0 = m.parameters().tensor_to_host("layers.0.weight");
  const std::vector<float> b0 = m.parameters().tensor_to_host("layers.0.bias");
  const float lr = 0.5F;
  optim::Sgd sgd(m.parameters(), {.lr = lr});
  TrainerOptions o;
  o.epochs = 2;
  o.batch_size = 12;
  o.shuffle = false;
  o.seed = 21;
  o.progress = false;
  o.augment = {.image = {2, 3, 4}, .shift = shift, .flip = true};
  Trainer(m, sgd, o).fit(d);

  std::vector<double> w(w0.begin(), w0.end()), b(b0.begin(), b0.end());
  std::vector<std::vector<int>> draws(2);
  for (const std::int64_t epoch : {0, 1}) {
    const std::int64_t slot = 0;
    const rules::AugmentArgs a{.key = data::augment_key(21),
                               .channels = 2,
                               .height = 3,
                               .width = 4,
                               .shift = shift,
                               .flip = true,
                               .batches_per_epoch = 1,
                               .max_rows = 12,
                               .epoch = &epoch,
                               .slot = &slot};
    std::vector<double> gw(w.size(), 0.0), gb(3, 0.0);
    int changed = 0;
    for (std::int64_t r = 0; r < d.rows; ++r) {
      const rules::AugmentDraw draw = rules::augment_draw(a, epoch, slot, r);
      changed += draw.dx != 0 || draw.dy != 0 || draw.flip ? 1 : 0;
      draws[static_cast<std::size_t>(epoch)].push_back((draw.dy * 3 + draw.dx) * 2 + draw.flip);
      const std::vector<double> x = transformed(d.x.data() + r * 24, 2, 3, 4, shift, draw);
      double z[3], zmax = -1e300, sum = 0;
      for (int k = 0; k < 3; ++k) {
        z[k] = b[k];
        for (int f = 0; f < 24; ++f) z[k] += w[k * 24 + f] * x[f];
        zmax = std::max(zmax, z[k]);
      }
      for (double& v : z) sum += (v = std::exp(v - zmax));
      for (int k = 0; k < 3; ++k) {
        const double g = (z[k] / sum - (d.labels[r] == k ? 1.0 : 0.0)) / 12.0;
        gb[k] += g;
        for (int f = 0; f < 24; ++f) gw[k * 24 + f] += g * x[f];
      }
    }
    ASSERT_GT(changed, 6);  // most rows were moved or mirrored
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= lr * gw[i];
    for (int k = 0; k < 3; ++k) b[k] -= lr * gb[k];
  }
  ASSERT_NE(draws[0], draws[1]);  // each epoch draws anew
  const std::vector<float> w2 = m.parameters().tensor_to_host("layers.0.weight");
  const std::vector<float> b2 = m.parameters().tensor_to_host("layers.0.bias");
  for (std::size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(w2[i], w[i], 4e-6) << "weight " << i;
  for (int k = 0; k < 3; ++k) ASSERT_NEAR(b2[k], b[k], 4e-6) << "bias " << k;
}

// The same seed twice: the same weights; augmentation on: other weights than off; evaluation of
// the trained model is that of the data as given (a forward pass over it).
TEST(Trainer, AugmentedRunsAreReproducible) {
  const data::Dataset train = blobs(300, 4);
  auto run = [&](bool augment) {
    nn::Sequential m = model(7);
    optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
    TrainerOptions o = options(2);
    if (augment) o.augment = {.image = {2, 2, 2}, .shift = 1, .flip = true};
    Trainer t(m, opt, o);
    t.fit(train);
    const EvalResult e = t.evaluate(train);
    return std::pair{m.parameters().to_host(), e.loss};
  };
  const auto [p1, loss1] = run(true);
  const auto [p2, loss2] = run(true);
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(loss1, loss2);
  EXPECT_NE(p1, run(false).first);
}

// 3 epochs straight == 1 epoch + resume, and == a run stopped after batch 5 of epoch 2 and
// resumed: the draws follow (epoch, batch), which a checkpoint restores.
TEST(Trainer, AugmentedResumeIsExact) {
  const data::Dataset train = blobs(300, 4);
  auto opts = [&](std::int64_t epochs) {
    TrainerOptions o = options(epochs);
    o.augment = {.image = {2, 2, 2}, .shift = 1, .flip = true};
    return o;
  };
  nn::Sequential straight = model(7);
  optim::AdamW opt1(straight.parameters(), optim::AdamW::defaults());
  Trainer(straight, opt1, opts(3)).fit(train);

  struct StopAt : Callback {
    Trainer* t = nullptr;
    void on_batch_end(std::int64_t epoch, std::int64_t batch) override {
      if (epoch == 2 && batch == 5) t->request_stop();
    }
  };
  for (const bool mid_epoch : {false, true}) {
    nn::Sequential first = model(7);
    optim::AdamW opt2(first.parameters(), optim::AdamW::defaults());
    TrainerOptions o = opts(mid_epoch ? 3 : 1);
    o.checkpoint_path =
        tmp(std::string("augment_resume_") + (mid_epoch ? "mid" : "epoch") + ".safetensors");
    Trainer interrupted(first, opt2, o);
    auto stop = std::make_shared<StopAt>();
    stop->t = &interrupted;
    if (mid_epoch) interrupted.add_callback(stop);
    interrupted.fit(train);
    ASSERT_EQ(interrupted.state().batch, mid_epoch ? 5 : 0);

    nn::Sequential second = model(12345);  // everything must come from the file
    optim::AdamW opt3(second.parameters(), optim::AdamW::defaults());
    Trainer resumed(second, opt3, opts(3));
    resumed.resume(o.checkpoint_path);
    resumed.fit(train);
    EXPECT_EQ(second.parameters().to_host(), straight.parameters().to_host()) << mid_epoch;
    EXPECT_EQ(second.buffers().to_host(), straight.buffers().to_host()) << mid_epoch;
  }
}

// A checkpoint continues with the augmentation it was written with: another (or none) would not
// be the same run, and is refused naming both; nothing is trained.
TEST(Trainer, ResumeWithOtherAugmentationIsRefused) {
  const data::Dataset train = blobs(300, 4);
  nn::Sequential first = model(7);
  optim::AdamW opt(first.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.augment = {.image = {2, 2, 2}, .shift = 1, .flip = true};
  o.checkpoint_path = tmp("augment_refused.safetensors");
  Trainer(first, opt, o).fit(train);
  for (const data::Augment& other :
       {data::Augment{.image = {2, 2, 2}, .shift = 1, .flip = false}, data::Augment{}}) {
    nn::Sequential m = model(7);
    optim::AdamW opt2(m.parameters(), optim::AdamW::defaults());
    TrainerOptions again = options(3);
    again.augment = other;
    Trainer t(m, opt2, again);
    t.resume(o.checkpoint_path);
    const std::vector<float> before = m.parameters().to_host();
    const std::string why = testing::error_of([&] { t.fit(train); });
    const std::string now = other.enabled() ? "shift=1 flip=0 image=[2, 2, 2]" : "off";
    EXPECT_NE(why.find("trained with augmentation shift=1 flip=1 image=[2, 2, 2] and this one "
                       "with " +
                       now),
              std::string::npos)
        << why;
    EXPECT_EQ(m.parameters().to_host(), before);
  }
}

// Note [test-time flips]: validation judged the model with flips or without; a resume that
// validates the other way is refused, naming both, before it trains. One that does not validate
// may evaluate either way.
TEST(Trainer, ResumeThatValidatesWithOtherTestTimeFlipsIsRefused) {
  const data::Dataset train = blobs(300, 4), val = blobs(60, 5);
  nn::Sequential first = model(7);
  optim::AdamW opt(first.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.eval_augment = {.image = {2, 1, 4}, .flip = true};
  o.checkpoint_path = tmp("eval_flips_refused.safetensors");
  Trainer(first, opt, o).fit(train, &val);
  nn::Sequential m = model(7);
  optim::AdamW opt2(m.parameters(), optim::AdamW::defaults());
  Trainer t(m, opt2, options(3));
  t.resume(o.checkpoint_path);
  EXPECT_EQ(t.state().evaluation, "flip image=[2, 1, 4]");
  const std::vector<float> before = m.parameters().to_host();
  const std::string why = testing::error_of([&] { t.fit(train, &val); });
  EXPECT_NE(why.find("the resumed run validated with eval_augment flip image=[2, 1, 4] and this "
                     "one with plain"),
            std::string::npos)
      << why;
  EXPECT_EQ(m.parameters().to_host(), before);
  t.fit(train);  // no validation: nothing judged by the flips
  EXPECT_EQ(t.state().epoch, 3);
  EXPECT_EQ(t.state().evaluation, "plain");
}

TEST(Trainer, RefusesAnAugmentationThatDoesNotFit) {
  nn::Sequential m = model(7);
  optim::AdamW opt(m.parameters(), optim::AdamW::defaults());
  TrainerOptions o = options(1);
  o.augment = {.image = {1, 28, 28}, .shift = 2, .flip = true};
  std::string why = testing::error_of([&] { Trainer(m, opt, o); });
  EXPECT_NE(why.find("augmentation: the image shape [1, 28, 28] holds 784 values but a "
                     "sample has 8 features"),
            std::string::npos)
      << why;
  o.augment = {};
  o.eval_augment = {.image = {1, 2, 2}, .flip = true};
  why = testing::error_of([&] { Trainer(m, opt, o); });
  EXPECT_NE(why.find("Trainer: eval_augment: the image shape [1, 2, 2] holds 4 values but a "
                     "sample has 8 features"),
            std::string::npos)
      << why;
}

// The GPU trains on the CPU's images: the same draws (Note [augmentation on the device]), so a
// run's loss curve matches the CPU's to rounding (the GEMMs differ in order, not the data).
TEST(TrainerGpu, AugmentedRunFollowsTheCpu) {
  CUTRAIN_REQUIRE_GPU();
  const data::Dataset train = blobs(300, 4);
  auto run = [&](Device device) {
    nn::Sequential m(8);
    m.emplace<nn::Linear>(8, 3);
    m.build(device, 7);
    optim::Sgd opt(m.parameters(), {.lr = 0.1F});
    TrainerOptions o = options(2);
    o.augment = {.image = {2, 2, 2}, .shift = 1, .flip = true};
    Trainer(m, opt, o).fit(train);
    return m.parameters().to_host();
  };
  const std::vector<float> cpu = run(Device::cpu()), gpu = run(Device::cuda(0));
  ASSERT_EQ(cpu.size(), gpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-4) << i;
}

}  // namespace
}  // namespace cutrain::train
