// Note [16-bit exports]: BF16 / F16 tensors hold the formats' own values (bytes checked against
// the formats' definitions), F16 refuses what it cannot hold, a 16-bit export loads back as
// weights (widened exactly) and never as a checkpoint. tests/torch_equivalence.py checks the same
// files against torch's .to(torch.bfloat16).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cutrain/error.hpp"
#include "cutrain/io/safetensors.hpp"
#include "cutrain/nn.hpp"
#include "cutrain/optim.hpp"
#include "cutrain/train/checkpoint.hpp"
#include "support/errors.hpp"
#include "support/temp_path.hpp"

namespace cutrain {
namespace {

std::string tmp(const std::string& name) {
  return testing::temp_path("cutrain_export_dtype_test", name);
}

std::uint16_t stored(const io::TensorData& t, std::size_t i) {
  return static_cast<std::uint16_t>(t.bytes[2 * i] | (t.bytes[2 * i + 1] << 8));
}

// Values, their bf16 and f16 bit patterns by the formats' definitions (sign, 8 or 5 exponent
// bits, 7 or 10 mantissa bits; nearest even), and what they widen back to.
struct Case {
  float x;
  std::uint16_t bf16, f16;
  float bf16_value, f16_value;
};
const Case kCases[] = {
    {1.0F, 0x3F80, 0x3C00, 1.0F, 1.0F},
    {-2.5F, 0xC020, 0xC100, -2.5F, -2.5F},
    // 1 + 2^-8: halfway between bf16's 1 and 1 + 2^-7, to the even 1; exact in f16.
    {1.00390625F, 0x3F80, 0x3C04, 1.0F, 1.00390625F},
    // 1 + 3 2^-8: halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to the even one.
    {1.01171875F, 0x3F82, 0x3C0C, 1.015625F, 1.01171875F},
    {65504.0F, 0x4780, 0x7BFF, 65536.0F, 65504.0F},                    // f16's largest finite value
    {5.9604645e-08F, 0x3380, 0x0001, 5.9604645e-08F, 5.9604645e-08F},  // 2^-24: f16 subnormal
    {1e-9F, 0x3089, 0x0000, 9.968061931431293e-10F, 0.0F},             // below f16's range
};

TEST(Safetensors, SixteenBitTensorsHoldTheFormatsValues) {
  std::vector<float> values;
  for (const Case& c : kCases) values.push_back(c.x);
  for (const io::DType dtype : {io::DType::kBf16, io::DType::kF16}) {
    const std::string path = tmp(std::string(io::dtype_name(dtype)) + ".safetensors");
    io::save_safetensors(path, {io::make_tensor("v", {7}, values, dtype)}, {});
    const io::SafetensorsFile f = io::load_safetensors(path);
    const io::TensorData& t = *f.find("v");
    ASSERT_EQ(t.dtype, dtype);
    ASSERT_EQ(t.bytes.size(), 14u);
    const std::vector<float> widened = t.floats();
    for (std::size_t i = 0; i < std::size(kCases); ++i) {
      const Case& c = kCases[i];
      const bool bf = dtype == io::DType::kBf16;
      EXPECT_EQ(stored(t, i), bf ? c.bf16 : c.f16) << io::dtype_name(dtype) << " of " << c.x;
      EXPECT_EQ(widened[i], bf ? c.bf16_value : c.f16_value) << io::dtype_name(dtype) << " " << c.x;
    }
  }
  // The header names the type as safetensors (and torch) spell it.
  const std::filesystem::path p = tmp("BF16.safetensors");
  std::ifstream in(p, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  EXPECT_NE(bytes.find("\"dtype\":\"BF16\""), std::string::npos);
}

TEST(Safetensors, Float16RefusesWhatItCannotHold) {
  const std::vector<float> fits = {65519.0F, -65519.0F};  // round to +-65504
  EXPECT_EQ(io::make_tensor("ok", {2}, fits, io::DType::kF16).floats(),
            (std::vector<float>{65504.0F, -65504.0F}));
  const std::vector<float> big = {1.0F, -70000.0F};
  const std::string why =
      testing::error_of([&] { (void)io::make_tensor("w", {2}, big, io::DType::kF16); });
  EXPECT_NE(why.find("tensor 'w' element 1 is -70000, beyond float16's largest value 65504"),
            std::string::npos)
      << why;
  EXPECT_NO_THROW((void)io::make_tensor("w", {2}, big, io::DType::kBf16));  // bf16 has the range
  EXPECT_NE(testing::error_of([&] {
              (void)io::make_tensor("n", {1}, big, io::DType::kI64);
            }).find("I64 is not a float type"),
            std::string::npos);
}

nn::Sequential model(std::uint64_t seed) {
  nn::Sequential m(6);
  m.emplace<nn::Linear>(6, 5).emplace<nn::BatchNorm1d>(5);
  m.emplace<nn::Activation>(nn::Activation::Kind::kRelu).emplace<nn::Linear>(5, 3);
  m.build(Device::cpu(), seed);
  return m;
}

// bf16 by its definition: the float's top 16 bits after adding 0x7FFF plus the kept part's
// lowest bit (nearest even; no NaN here).
float bf16_of(float x) {
  std::uint32_t u = 0;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFFU + ((u >> 16) & 1U)) & 0xFFFF0000U;
  float r = 0;
  std::memcpy(&r, &u, 4);
  return r;
}

TEST(Checkpoint, SixteenBitExportsLoadAsWeightsNotAsCheckpoints) {
  nn::Sequential a = model(3);
  train::export_torch(tmp("w32.safetensors"), a);
  train::export_torch(tmp("w16.safetensors"), a, {}, io::DType::kBf16);
  EXPECT_LT(std::filesystem::file_size(tmp("w16.safetensors")),
            std::filesystem::file_size(tmp("w32.safetensors")));
  nn::Sequential b = model(4);
  train::load_weights(tmp("w16.safetensors"), b);
  const std::vector<float> want = a.parameters().to_host(), got = b.parameters().to_host();
  ASSERT_EQ(got.size(), want.size());
  std::size_t moved = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], bf16_of(want[i])) << i;
    moved += got[i] != want[i] ? 1 : 0;
  }
  // The 45 He-initialized weights are (almost surely) not bf16 values; zero biases, BatchNorm's
  // ones and zeros and the arena's padding are.
  EXPECT_GE(moved, 40u);
  // load_model rebuilds it from the file alone.
  EXPECT_EQ(train::load_model(tmp("w16.safetensors"), Device::cpu()).parameters().to_host(), got);

  // A checkpoint whose weights were rewritten in 16 bits is refused by name: a resume continues
  // from the F32 master weights, not from rounded ones.
  optim::AdamW opt(a.parameters(), optim::AdamW::defaults());
  train::save_checkpoint(tmp("ck.safetensors"), a, &opt, train::TrainState{});
  io::SafetensorsFile f = io::load_safetensors(tmp("ck.safetensors"));
  for (io::TensorData& t : f.tensors)
    if (t.name == "layers.0.weight")
      t = io::make_tensor(t.name, t.shape, t.floats(), io::DType::kBf16);
  io::save_safetensors(tmp("ck16.safetensors"), f.tensors, f.metadata);
  nn::Sequential c = model(5);
  optim::AdamW opt_c(c.parameters(), optim::AdamW::defaults());
  const std::vector<float> before = c.parameters().to_host();
  const std::string why =
      testing::error_of([&] { train::load_checkpoint(tmp("ck16.safetensors"), c, &opt_c); });
  EXPECT_NE(why.find("tensor 'layers.0.weight' is BF16, not F32 (a checkpoint holds the F32 "
                     "master weights)"),
            std::string::npos)
      << why;
  EXPECT_EQ(c.parameters().to_host(), before);
}

}  // namespace
}  // namespace cutrain
