// Note [augmentation on the device]: each augmented row is its image zero-padded by `shift`,
// cropped at the drawn corner and mirrored when the coin says so - built here the long way, as
// torchvision's RandomCrop(padding=) then RandomHorizontalFlip() do it; the draws are uniform,
// depend on the position alone, and the GPU writes the CPU's bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cutrain/buffer.hpp"
#include "cutrain/data/augment.hpp"
#include "cutrain/error.hpp"
#include "src/data/augment.hpp"
#include "support/errors.hpp"
#include "support/gpu.hpp"

namespace cutrain::data {
namespace {

struct Images {
  std::int64_t c, h, w, rows;
  std::vector<float> x;  // [rows, c h w]
  std::int64_t features() const { return c * h * w; }
};

Images random_images(std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t rows) {
  Images im{c, h, w, rows, std::vector<float>(static_cast<std::size_t>(rows * c * h * w))};
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(0.5F, 1.5F);  // never 0: a zero fill is visible
  for (float& v : im.x) v = u(gen);
  return im;
}

rules::AugmentArgs args_for(const Images& im, std::int32_t shift, bool flip,
                            const std::int64_t* epoch, const std::int64_t* slot) {
  return {.key = augment_key(3),
          .channels = im.c,
          .height = im.h,
          .width = im.w,
          .shift = shift,
          .flip = flip,
          .batches_per_epoch = 7,
          .max_rows = im.rows,
          .epoch = epoch,
          .slot = slot};
}

// Row r transformed as torchvision would: pad by `shift` with zeros, crop H x W at (dy + shift,
// dx + shift), then reverse each image row when flipped.
std::vector<float> reference_row(const Images& im, std::int64_t r, std::int32_t shift,
                                 const rules::AugmentDraw& d) {
  const std::int64_t hp = im.h + 2 * shift, wp = im.w + 2 * shift;
  std::vector<float> padded(static_cast<std::size_t>(im.c * hp * wp), 0.0F);
  const float* row = im.x.data() + r * im.features();
  for (std::int64_t c = 0; c < im.c; ++c)
    for (std::int64_t i = 0; i < im.h; ++i)
      for (std::int64_t j = 0; j < im.w; ++j)
        padded[static_cast<std::size_t>((c * hp + i + shift) * wp + j + shift)] =
            row[(c * im.h + i) * im.w + j];
  std::vector<float> out(static_cast<std::size_t>(im.features()));
  const std::int64_t top = d.dy + shift, left = d.dx + shift;
  for (std::int64_t c = 0; c < im.c; ++c)
    for (std::int64_t i = 0; i < im.h; ++i)
      for (std::int64_t j = 0; j < im.w; ++j) {
        const std::int64_t to = d.flip ? im.w - 1 - j : j;
        out[static_cast<std::size_t>((c * im.h + i) * im.w + to)] =
            padded[static_cast<std::size_t>((c * hp + top + i) * wp + left + j)];
      }
  return out;
}

std::vector<float> augment_on(Device device, const Images& im, std::int32_t shift, bool flip,
                              std::int64_t epoch, std::int64_t slot) {
  const std::int64_t where[2] = {epoch, slot};
  Buffer at(sizeof(where), device);
  copy_bytes(at.data(), device, where, Device::cpu(), sizeof(where));
  const auto* p = at.as<std::int64_t>();
  Buffer x(im.x.size() * sizeof(float), device), y(im.x.size() * sizeof(float), device);
  copy_bytes(x.data(), device, im.x.data(), Device::cpu(), x.bytes());
  detail::augment_rows(device, args_for(im, shift, flip, p, p + 1), x.as<float>(), im.rows,
                       y.as<float>(), nullptr);
  std::vector<float> out(im.x.size());
  copy_bytes(out.data(), Device::cpu(), y.data(), device, y.bytes());
  return out;
}

TEST(Augment, EachRowIsItsPaddedCropMirroredWhenDrawn) {
  // 2 channels of 5 x 6 (not square: a swapped height and width would show).
  const Images im = random_images(2, 5, 6, 64);
  for (const auto& [shift, flip] :
       {std::tuple{2, true}, std::tuple{1, false}, std::tuple{0, true}, std::tuple{4, true}}) {
    const std::vector<float> got = augment_on(Device::cpu(), im, shift, flip, 2, 5);
    const std::int64_t epoch = 2, slot = 5;
    const rules::AugmentArgs a = args_for(im, shift, flip, &epoch, &slot);
    std::set<std::tuple<int, int, bool>> seen;
    for (std::int64_t r = 0; r < im.rows; ++r) {
      const rules::AugmentDraw d = rules::augment_draw(a, epoch, slot, r);
      ASSERT_GE(d.dy, -shift);
      ASSERT_LE(d.dy, shift);
      ASSERT_GE(d.dx, -shift);
      ASSERT_LE(d.dx, shift);
      if (!flip) {
        ASSERT_FALSE(d.flip);
      }
      seen.insert({d.dy, d.dx, d.flip});
      const std::vector<float> want = reference_row(im, r, shift, d);
      const std::vector<float> row(got.begin() + r * im.features(),
                                   got.begin() + (r + 1) * im.features());
      ASSERT_EQ(row, want) << "row " << r << " shift " << shift << " dy " << d.dy << " dx " << d.dx
                           << " flip " << d.flip;
    }
    // The rows do not all get one transform: more than half the outcomes (at most 64) show.
    const auto outcomes =
        static_cast<std::size_t>((2 * shift + 1) * (2 * shift + 1) * (flip ? 2 : 1));
    EXPECT_GT(seen.size(), std::min<std::size_t>(outcomes, 64) / 2) << "shift " << shift;
  }
}

// Every offset in [-shift, shift] and both coin sides come up equally often, independently; a
// row's draw changes with the epoch, the slot, the row and the key.
TEST(Augment, DrawsAreUniformAndFollowThePosition) {
  const Images im = random_images(1, 8, 8, 1);
  const std::int32_t shift = 2;
  const std::int64_t epoch = 0, slot = 0;
  rules::AugmentArgs a = args_for(im, shift, true, &epoch, &slot);
  a.max_rows = 1000;
  a.batches_per_epoch = 100;
  const int n = 100000;
  std::vector<int> dy(5), dx(5), joint(25);
  int flips = 0;
  for (int k = 0; k < n; ++k) {
    const rules::AugmentDraw d = rules::augment_draw(a, k / 50000, (k / 1000) % 50, k % 1000);
    ++dy[d.dy + shift];
    ++dx[d.dx + shift];
    ++joint[(d.dy + shift) * 5 + d.dx + shift];
    flips += d.flip ? 1 : 0;
  }
  // Binomial standard deviations: sqrt(n p (1 - p)) = 126 for p = 1/5, 62 for p = 1/25, 158
  // for 1/2; 5 of them is far beyond chance.
  for (int v = 0; v < 5; ++v) {
    EXPECT_NEAR(dy[v], n / 5, 5 * 126) << "dy = " << v - shift;
    EXPECT_NEAR(dx[v], n / 5, 5 * 126) << "dx = " << v - shift;
  }
  for (int v = 0; v < 25; ++v) EXPECT_NEAR(joint[v], n / 25, 5 * 62) << "pair " << v;
  EXPECT_NEAR(flips, n / 2, 5 * 158);

  auto draw = [&](const rules::AugmentArgs& args, std::int64_t e, std::int64_t s, std::int64_t r) {
    const rules::AugmentDraw d = rules::augment_draw(args, e, s, r);
    return std::tuple{d.dy, d.dx, d.flip};
  };
  // Over 64 rows, changing any coordinate of the position changes some draw.
  auto rows_of = [&](const rules::AugmentArgs& args, std::int64_t e, std::int64_t s) {
    std::vector<std::tuple<int, int, bool>> v;
    for (std::int64_t r = 0; r < 64; ++r) v.push_back(draw(args, e, s, r));
    return v;
  };
  const auto base = rows_of(a, 1, 3);
  EXPECT_NE(base, rows_of(a, 2, 3));
  EXPECT_NE(base, rows_of(a, 1, 4));
  rules::AugmentArgs other = a;
  other.world = 2;  // another rank
  other.rank = 1;
  EXPECT_NE(base, rows_of(other, 1, 3));
  other = a;
  other.key = augment_key(4);  // another seed
  EXPECT_NE(base, rows_of(other, 1, 3));
  EXPECT_EQ(base, rows_of(a, 1, 3));  // and nothing else
}

// Note [replica rows]: rank r of W draws for its row j what one process with the combined batch
// (W times the rows) draws for row j W + r, in every batch of every epoch.
TEST(Augment, AReplicasRowDrawsItsGlobalRow) {
  const std::int64_t epoch = 0, slot = 0;
  rules::AugmentArgs one{.key = augment_key(3),
                         .channels = 1,
                         .height = 8,
                         .width = 8,
                         .shift = 3,
                         .flip = true,
                         .batches_per_epoch = 5,
                         .max_rows = 12,
                         .epoch = &epoch,
                         .slot = &slot};
  rules::AugmentArgs rank = one;
  rank.max_rows = 4;
  rank.world = 3;
  std::set<std::tuple<int, int, bool>> seen;
  for (std::int64_t e = 0; e < 3; ++e)
    for (std::int64_t s = 0; s < 5; ++s)
      for (std::int64_t r = 0; r < 3; ++r)
        for (std::int64_t j = 0; j < 4; ++j) {
          rank.rank = r;
          const rules::AugmentDraw got = rules::augment_draw(rank, e, s, j);
          const rules::AugmentDraw want = rules::augment_draw(one, e, s, j * 3 + r);
          ASSERT_EQ(got.dy, want.dy) << e << " " << s << " " << r << " " << j;
          ASSERT_EQ(got.dx, want.dx) << e << " " << s << " " << r << " " << j;
          ASSERT_EQ(got.flip, want.flip) << e << " " << s << " " << r << " " << j;
          seen.insert({got.dy, got.dx, got.flip});
        }
  EXPECT_GT(seen.size(), 40U);  // of 7 x 7 x 2 = 98: the draws vary (a constant would pass above)
}

TEST(Augment, RefusesWhatDoesNotFit) {
  const auto why = [](const Augment& a, std::int64_t features) {
    return testing::error_of([&] { check_augment(a, features); });
  };
  EXPECT_NE(why({{1, 28, 28}, 2, true}, 785).find("holds 784 values but a sample has 785"),
            std::string::npos);
  EXPECT_NE(why({{28, 28}, 2, false}, 784).find("must be {C, H, W}"), std::string::npos);
  EXPECT_NE(why({{1, 0, 28}, 0, true}, 0).find("positive sizes"), std::string::npos);
  EXPECT_NE(why({{1, 4, 28}, 4, false}, 112).find("shift = 4 is invalid for 4x28 images"),
            std::string::npos);
  EXPECT_NE(why({{1, 28, 28}, -1, true}, 784).find("shift = -1"), std::string::npos);
  EXPECT_NO_THROW(check_augment({{1, 28, 28}, 27, true}, 784));
  EXPECT_NO_THROW(check_augment({{}, 0, false}, 5));  // off: nothing to check
}

std::vector<float> mirror_on(Device device, const Images& im) {
  Buffer x(im.x.size() * sizeof(float), device), y(im.x.size() * sizeof(float), device);
  copy_bytes(x.data(), device, im.x.data(), Device::cpu(), x.bytes());
  detail::mirror_rows(device, x.as<float>(), im.rows, im.features(), im.w, y.as<float>(), nullptr);
  std::vector<float> out(im.x.size());
  copy_bytes(out.data(), Device::cpu(), y.data(), device, y.bytes());
  return out;
}

// Note [test-time flips]: the mirror image of every row, element (c, i, j) from (c, i, W-1-j) -
// indexed here by all four coordinates, where the rule reverses runs of W - and mirroring twice
// gives the row back.
TEST(EvalFlips, MirrorRowsReverseEachImageLine) {
  for (const auto& [c, h, w, rows] :
       {std::tuple{3, 4, 5, 6}, std::tuple{1, 28, 28, 2}, std::tuple{2, 3, 1, 4}}) {
    const Images im = random_images(c, h, w, rows);
    const std::vector<float> got = mirror_on(Device::cpu(), im);
    std::vector<float> want(im.x.size());
    for (std::int64_t r = 0; r < im.rows; ++r)
      for (std::int64_t k = 0; k < im.c; ++k)
        for (std::int64_t i = 0; i < im.h; ++i)
          for (std::int64_t j = 0; j < im.w; ++j)
            want[static_cast<std::size_t>(((r * im.c + k) * im.h + i) * im.w + j)] =
                im.x[static_cast<std::size_t>(((r * im.c + k) * im.h + i) * im.w + (im.w - 1 - j))];
    EXPECT_EQ(got, want) << c << "x" << h << "x" << w;
    Images back = im;
    back.x = got;
    EXPECT_EQ(mirror_on(Device::cpu(), back), im.x) << c << "x" << h << "x" << w;
  }
}

TEST(EvalFlips, RefuseImagesThatDoNotFit) {
  const auto why = [](const EvalAugment& a, std::int64_t features) {
    return testing::error_of([&] { check_eval_augment(a, features, "train::evaluate"); });
  };
  EXPECT_NE(why({{1, 28, 28}, true}, 785)
                .find("train::evaluate: the image shape [1, 28, 28] holds 784 values but a "
                      "sample has 785 features"),
            std::string::npos);
  EXPECT_NE(why({{}, true}, 784).find("train::evaluate: the image shape [] must be {C, H, W}"),
            std::string::npos);
  EXPECT_NE(why({{1, -28, -28}, true}, 784).find("positive sizes"), std::string::npos);
  EXPECT_NO_THROW(check_eval_augment({{}, false}, 5, "x"));  // off: nothing to check
}

TEST(EvalFlipsGpu, MirrorRowsWriteTheCpuBits) {
  CUTRAIN_REQUIRE_GPU();
  for (const auto& [c, h, w, rows] : {std::tuple{1, 28, 28, 300}, std::tuple{3, 7, 5, 33}}) {
    const Images im = random_images(c, h, w, rows);
    EXPECT_EQ(mirror_on(Device::cuda(0), im), mirror_on(Device::cpu(), im))
        << c << "x" << h << "x" << w;
  }
}

TEST(AugmentGpu, WritesTheCpuBits) {
  CUTRAIN_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  // 784-value rows (Fashion-MNIST's) and an odd shape; more rows than one block of the grid.
  for (const auto& [c, h, w, rows] : {std::tuple{1, 28, 28, 300}, std::tuple{3, 7, 5, 33}}) {
    const Images im = random_images(c, h, w, rows);
    for (const auto& [shift, flip] : {std::tuple{2, true}, std::tuple{3, false}})
      EXPECT_EQ(augment_on(gpu, im, shift, flip, 4, 6),
                augment_on(Device::cpu(), im, shift, flip, 4, 6))
          << c << "x" << h << "x" << w << " shift " << shift;
  }
}

}  // namespace
}  // namespace cutrain::data
