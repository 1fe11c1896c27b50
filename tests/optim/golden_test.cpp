// Every optimizer configuration in golden/cases.json against PyTorch (make_goldens.py): 50
// steps of awkward gradients (zeros, 1e-6, 1e3, sign flips), parameters after the first and the
// last step and every state after the last, on the CPU and (when present) the GPU. Clip cases
// run GradClipper + the fused step against clip_grad_norm_ + torch.optim and compare the norms.
// Unclipped, the GPU must agree with the CPU bit for bit; clipped, within the tolerance (the
// two backends reduce the norm in different orders).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cutrain/clip.hpp"
#include "cutrain/error.hpp"
#include "optim_fixture.hpp"
#include "support/gpu.hpp"

namespace cutrain {
namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

const json& spec() {
  static const json j = read_json(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/cases.json");
  return j;
}
const json& manifest() {
  static const json j = read_json(std::string(CUTRAIN_TEST_DIR) + "/optim/golden/manifest.json");
  return j;
}

std::vector<float> read_golden(const std::string& name) {
  const std::string path = std::string(CUTRAIN_TEST_DIR) + "/optim/golden/" + name + ".bin";
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<float> v(static_cast<std::size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()),
          static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

// Relative error with the denominator floored at 1e-3 of the array's largest magnitude:
// elements that pass through zero (sign flips, maximize) have no meaningful relative error, and
// their absolute error is then bounded by 1e-9 of the array's scale.
//
// Clip cases use floor = the array's scale (error relative to max |want|): the clip coefficient
// comes from a norm reduced in another order than clip_grad_norm_'s (double sums vs float
// per-tensor norms), so it can differ in its last bit, and momentum states that sum many
// gradients of alternating sign amplify that bit for the elements that nearly cancel.
double max_rel_error(std::span<const float> got, std::span<const float> want,
                     double floor_fraction = 1e-3) {
  double scale = 0.0;
  for (const float w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  double worst = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst,
                     d / std::max(std::fabs(static_cast<double>(want[i])), floor_fraction * scale));
  }
  return worst;
}

struct RunResult {
  std::vector<float> checkpoint;  // params after step `checkpoint_step`
  std::vector<float> params;
  std::vector<float> norms;  // clip cases: the pre-clip global norm of every step
  std::vector<std::pair<std::string, std::vector<float>>> states;
};

RunResult run_case(const json& c, Device device) {
  const int steps = spec().at("steps");
  const int checkpoint = spec().at("checkpoint_step");
  const bool groups = c.value("groups", false);
  Arena params(testing::golden_layout(groups), Device::cpu());
  testing::set_flat(params, testing::golden_initial_params());
  params = params.copy_to(device);
  Arena grads = params.like();
  auto opt = testing::make_optimizer(c, params);
  const float base_lr = opt->lr();
  std::vector<float> g(testing::kGoldenN);
  RunResult r;
  std::unique_ptr<GradClipper> clipper;
  if (c.contains("clip")) {
    const float max_norm = c.at("clip").at("max_norm");
    const std::string type = c.at("clip").at("norm_type");
    clipper = std::make_unique<GradClipper>(device, max_norm, parse_norm_type(type));
  }
  for (int t = 1; t <= steps; ++t) {
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = testing::golden_grad(t, i);
    testing::set_flat(grads, g);
    if (c.contains("lr_gamma_per_step")) {
      const double gamma = c.at("lr_gamma_per_step");
      opt->set_lr(static_cast<float>(static_cast<double>(base_lr) * std::pow(gamma, t - 1)));
    }
    if (clipper) {
      opt->step(params, grads, clipper->run(grads));
      r.norms.push_back(clipper->last_norm());
    } else {
      opt->step(params, grads);
    }
    if (t == checkpoint) r.checkpoint = testing::get_flat(params);
  }
  r.params = testing::get_flat(params);
  for (const auto& s : opt->state()) r.states.emplace_back(s.name, testing::get_flat(*s.arena));
  EXPECT_EQ(opt->applied_steps(), steps);
  EXPECT_EQ(opt->skipped_steps(), 0);
  return r;
}

void expect_matches_golden(const json& c, const RunResult& r) {
  const std::string name = c.at("name");
  const std::vector<float> golden = read_golden(name);
  const std::vector<std::string> states = manifest().at("cases").at(name).at("states");
  const std::size_t n = testing::kGoldenN;
  const std::size_t norms = c.contains("clip") ? static_cast<std::size_t>(spec().at("steps")) : 0;
  ASSERT_EQ(golden.size(), n * (2 + states.size()) + norms) << name;
  ASSERT_EQ(r.states.size(), states.size()) << name << ": state arenas differ from PyTorch's";
  const std::span<const float> gs(golden);
  constexpr double kTol = 1e-6;
  const double floor = c.contains("clip") ? 1.0 : 1e-3;
  if (std::getenv("CUTRAIN_PRINT_ERRORS") != nullptr)  // for the closing notes: how close?
    std::printf("%s: max relative error of params %.3g\n", name.c_str(),
                max_rel_error(r.params, gs.subspan(n, n)));
  EXPECT_LE(max_rel_error(r.checkpoint, gs.subspan(0, n), floor), kTol) << name << " params@1";
  EXPECT_LE(max_rel_error(r.params, gs.subspan(n, n), floor), kTol) << name << " params@end";
  for (std::size_t k = 0; k < states.size(); ++k) {
    EXPECT_EQ(r.states[k].first, states[k]) << name;
    EXPECT_LE(max_rel_error(r.states[k].second, gs.subspan((2 + k) * n, n), floor), kTol)
        << name << " state " << states[k];
  }
  if (norms > 0) {
    // clip_grad_norm_ sums per-tensor norms in float; cutrain sums squares in double.
    ASSERT_EQ(r.norms.size(), norms);
    const auto want = gs.subspan((2 + states.size()) * n, norms);
    for (std::size_t t = 0; t < norms; ++t)
      EXPECT_NEAR(r.norms[t], want[t], kTol * want[t]) << name << " norm at step " << t + 1;
  }
}

class OptimGolden : public ::testing::TestWithParam<std::string> {
 protected:
  const json& the_case() const {
    for (const json& c : spec().at("cases"))
      if (c.at("name") == GetParam()) return c;
    throw std::runtime_error("no case " + GetParam());
  }
};

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const json& c : spec().at("cases")) names.push_back(c.at("name"));
  return names;
}

TEST_P(OptimGolden, CpuMatchesPyTorch) {
  expect_matches_golden(the_case(), run_case(the_case(), Device::cpu()));
}

INSTANTIATE_TEST_SUITE_P(Cases, OptimGolden, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

class OptimGoldenGpu : public OptimGolden {};

TEST_P(OptimGoldenGpu, GpuMatchesPyTorchAndCpuBitForBit) {
  CUTRAIN_REQUIRE_GPU();
  const RunResult gpu = run_case(the_case(), Device::cuda(0));
  expect_matches_golden(the_case(), gpu);
  const RunResult cpu = run_case(the_case(), Device::cpu());
  if (the_case().contains("clip")) return;  // norms reduce in another order: golden tolerance
  EXPECT_EQ(gpu.params, cpu.params) << "CPU and GPU run the same rule; they must agree exactly";
  for (std::size_t k = 0; k < cpu.states.size(); ++k)
    EXPECT_EQ(gpu.states[k].second, cpu.states[k].second) << cpu.states[k].first;
}

INSTANTIATE_TEST_SUITE_P(Cases, OptimGoldenGpu, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace cutrain
