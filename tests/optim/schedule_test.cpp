// LR schedules against torch.optim.lr_scheduler (golden/schedules.json, from make_goldens.py)
// and against their closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>

#include "cutrain/error.hpp"
#include "cutrain/optim/schedule.hpp"

namespace cutrain::optim {
namespace {

const nlohmann::json& golden() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/schedules.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

void expect_sequence(const LrSchedule& s, const char* key) {
  const std::vector<double> want = golden().at(key);
  ASSERT_FALSE(want.empty());
  for (std::size_t k = 0; k < want.size(); ++k)
    EXPECT_NEAR(s.lr(static_cast<std::int64_t>(k)), want[k], 1e-6 * want[k] + 1e-12)
        << key << " at k = " << k;
}

TEST(Schedule, MatchesPyTorch) {
  expect_sequence(StepLr(0.1, 7, 0.5), "step");
  expect_sequence(MultiStepLr(0.1, {5, 12, 30}, 0.3), "multistep");
  expect_sequence(ExponentialLr(0.1, 0.93), "exponential");
  expect_sequence(CosineLr(0.1, 25, 0.001), "cosine");
  expect_sequence(CosineLr::with_restarts(0.1, 5, 2, 0.002), "cosine_restarts");
  expect_sequence(WarmupLr(std::make_unique<ExponentialLr>(0.1, 0.95), 6, 0.25),
                  "warmup_exponential");
  expect_sequence(LinearDecayLr(0.1, 0.005, 20), "linear_decay");
  expect_sequence(OneCycleLr(0.1, 40), "onecycle");
  // Linear annealing, three phases, and a fractional phase end (0.25 x 33 - 1 = 7.25).
  expect_sequence(OneCycleLr(0.2, 33, 0.25, OneCycleLr::Anneal::kLinear, 10, 100, true),
                  "onecycle_linear_three_phase");
}

TEST(Schedule, PlateauMatchesPyTorch) {
  ReduceLrOnPlateau s(0.1, 0.5, 2, 1e-4, 1, 0.01);
  const std::vector<double> metrics = golden().at("plateau_metrics");
  const std::vector<double> want = golden().at("plateau");
  for (std::size_t k = 0; k < metrics.size(); ++k) {
    EXPECT_NEAR(s.lr(0), want[k], 1e-12) << "before observation " << k;
    s.observe(metrics[k]);
  }
  EXPECT_THROW(s.observe(std::nan("")), Error);
}

// Note [schedule state]: a plateau schedule stopped half way and restored from its state()
// continues exactly as the uninterrupted one (PyTorch's golden sequence); a damaged state is
// refused with the entry named and leaves the schedule as it was.
TEST(Schedule, PlateauStateRoundTripsAndContinuesTheGoldenSequence) {
  const std::vector<double> metrics = golden().at("plateau_metrics");
  const std::vector<double> want = golden().at("plateau");
  ReduceLrOnPlateau first(0.1, 0.5, 2, 1e-4, 1, 0.01);
  const std::size_t half = metrics.size() / 2;
  for (std::size_t k = 0; k < half; ++k) first.observe(metrics[k]);
  ReduceLrOnPlateau resumed(0.1, 0.5, 2, 1e-4, 1, 0.01);
  resumed.load_state(first.state());
  for (std::size_t k = half; k < metrics.size(); ++k) {
    EXPECT_NEAR(resumed.lr(0), want[k], 1e-12) << "before observation " << k;
    resumed.observe(metrics[k]);
  }
  ASSERT_LT(want[metrics.size() - 1], want[0]) << "the golden sequence must reduce the lr";
  // A fresh schedule (best = +inf) round-trips too.
  ReduceLrOnPlateau fresh(0.1);
  EXPECT_EQ(fresh.state().at("best"), "inf");
  ReduceLrOnPlateau other(0.2);
  other.load_state(fresh.state());
  EXPECT_EQ(other.state(), fresh.state());

  auto refused = [&](const std::string& key, const std::string& value, const char* expect) {
    LrSchedule::State bad = first.state();
    if (value.empty())
      bad.erase(key);
    else
      bad[key] = value;
    ReduceLrOnPlateau target(0.3);
    const LrSchedule::State before = target.state();
    try {
      target.load_state(bad);
      ADD_FAILURE() << key << " = " << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
    EXPECT_EQ(target.state(), before) << key;
  };
  refused("bad", "", "has no 'bad'");
  refused("lr", "0.1x", "'lr' = '0.1x' is not a number");
  refused("cooldown_left", "-2", "out of range");
  refused("lr", "nan", "out of range");
  // Closed forms have no state; a warmup forwards to its inner schedule.
  EXPECT_TRUE(CosineLr(1.0, 10).state().empty());
  WarmupLr warm(std::make_unique<ReduceLrOnPlateau>(0.1), 5);
  EXPECT_EQ(warm.state(), ReduceLrOnPlateau(0.1).state());
}

TEST(Schedule, ClosedForms) {
  // Deep Learning book eq. 8.14 at a quarter of tau: 0.75 * base + 0.25 * final.
  EXPECT_DOUBLE_EQ(LinearDecayLr(0.2, 0.02, 100).lr(25), 0.75 * 0.2 + 0.25 * 0.02);
  EXPECT_DOUBLE_EQ(LinearDecayLr(0.2, 0.02, 100).lr(1000), 0.02);
  // Cosine: half way is the midpoint, the end is eta_min.
  EXPECT_NEAR(CosineLr(1.0, 10, 0.2).lr(5), 0.6, 1e-15);
  EXPECT_NEAR(CosineLr(1.0, 10, 0.2).lr(10), 0.2, 1e-15);
  // Restarts with t_mult = 2: periods 3, 6, 12 start at k = 0, 3, 9.
  const CosineLr r = CosineLr::with_restarts(1.0, 3, 2);
  EXPECT_DOUBLE_EQ(r.lr(3), 1.0);
  EXPECT_DOUBLE_EQ(r.lr(9), 1.0);
  EXPECT_NEAR(r.lr(6), (1 + std::cos(std::numbers::pi * 3 / 6)) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(ConstantLr(0.3).lr(12345), 0.3);
  EXPECT_DOUBLE_EQ(WarmupLr(std::make_unique<ConstantLr>(1.0), 4).lr(1), 0.25);
  EXPECT_DOUBLE_EQ(StepLr(1.0, 3, 0.1).lr(2), 1.0);
  // One cycle: starts at max / 25, peaks at max at step pct_start total - 1, ends at
  // max / 25 / 1e4 and holds there past the end.
  const OneCycleLr one(1.0, 100, 0.25);
  EXPECT_NEAR(one.lr(0), 1.0 / 25, 1e-15);
  EXPECT_NEAR(one.lr(24), 1.0, 1e-15);
  EXPECT_NEAR(one.lr(99), 1.0 / 25 / 1e4, 1e-15);
  EXPECT_EQ(one.lr(100000), one.lr(99));
}

TEST(Schedule, RejectsBadSettings) {
  EXPECT_THROW(StepLr(0.1, 0, 0.5), Error);
  EXPECT_THROW(StepLr(-0.1, 1, 0.5), Error);
  EXPECT_THROW(ExponentialLr(0.1, 0.0), Error);
  EXPECT_THROW(MultiStepLr(0.1, {5, 3}, 0.1), Error);
  EXPECT_THROW(CosineLr(0.1, 0), Error);
  EXPECT_THROW(CosineLr::with_restarts(0.1, 5, 0), Error);
  EXPECT_THROW(LinearDecayLr(0.1, 0.01, 0), Error);
  EXPECT_THROW(WarmupLr(nullptr, 5), Error);
  EXPECT_THROW(WarmupLr(std::make_unique<ConstantLr>(1.0), 5, 1.5), Error);
  EXPECT_THROW(ReduceLrOnPlateau(0.1, 1.0), Error);
  EXPECT_THROW(OneCycleLr(0.1, 1), Error);
  EXPECT_THROW(OneCycleLr(0.1, 100, 0.0), Error);
  EXPECT_THROW(OneCycleLr(0.1, 100, 1.0), Error);
  EXPECT_THROW(OneCycleLr(0.1, 3, 0.3), Error);  // 0.3 x 3 - 1 < 0: an empty first phase
  EXPECT_THROW(OneCycleLr(0.1, 100, 0.3, OneCycleLr::Anneal::kCos, 0.0), Error);
  EXPECT_THROW(ConstantLr(std::nan("")), Error);
  EXPECT_THROW(ExponentialLr(0.1, 0.9).lr(-1), Error);
  try {
    StepLr(0.1, -3, 0.5);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step_size = -3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cutrain::optim
