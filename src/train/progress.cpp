#include "src/train/progress.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace cutrain::train::detail {

void draw_progress(std::int64_t epoch, std::int64_t done, std::int64_t total, double loss,
                   std::int64_t samples, double elapsed_s) {
  const int width = 30, filled = static_cast<int>(width * done / total);
  std::fprintf(stderr, "\repoch %lld [%s%s] %lld/%lld loss %.4f %.0f samples/s ETA %.0fs ",
               static_cast<long long>(epoch),
               std::string(static_cast<std::size_t>(filled), '#').c_str(),
               std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
               static_cast<long long>(done), static_cast<long long>(total), loss,
               static_cast<double>(samples) / elapsed_s,
               elapsed_s / static_cast<double>(done) * static_cast<double>(total - done));
}

void clear_progress() {
  std::fprintf(stderr, "\r%*s\r", 110, "");
}

void print_epoch(const EpochMetrics& m) {
  char val_part[64] = "";
  if (!std::isnan(m.val_loss) && !std::isnan(m.val_accuracy))
    std::snprintf(val_part, sizeof(val_part), "  val loss %.4f  val acc %.4f", m.val_loss,
                  m.val_accuracy);
  else if (!std::isnan(m.val_loss))  // regression: no accuracy
    std::snprintf(val_part, sizeof(val_part), "  val loss %.4f", m.val_loss);
  char scale_part[48] = "";  // only with loss scaling (Note [dynamic loss scale])
  if (m.loss_scale != 1.0)
    std::snprintf(scale_part, sizeof(scale_part), "  loss scale 2^%d", std::ilogb(m.loss_scale));
  std::fprintf(stderr,
               "epoch %3lld  lr %.3g  train loss %.4f%s  grad norm %.3g  skipped %lld%s  "
               "%.1fs  %.0f samples/s\n",
               static_cast<long long>(m.epoch), m.lr, m.train_loss, val_part, m.grad_norm,
               static_cast<long long>(m.skipped_steps), scale_part, m.seconds,
               m.samples_per_second);
}

}  // namespace cutrain::train::detail
