#include "cutrain/train/confusion.hpp"

#include "cutrain/error.hpp"
#include "kernels/nn/loss.cuh"

namespace cutrain::train {

std::int32_t predicted_class(std::span<const float> logits) {
  CUTRAIN_CHECK(!logits.empty(), "predicted_class: no logits");
  return rules::row_argmax(logits.data(), static_cast<int>(logits.size()));
}

ConfusionMatrix confusion_matrix(std::span<const float> outputs, std::int32_t classes,
                                 std::span<const std::int32_t> labels) {
  CUTRAIN_CHECK(classes >= 1, "confusion_matrix: classes = ", classes, " must be >= 1");
  const auto width = static_cast<std::size_t>(classes);
  CUTRAIN_CHECK(outputs.size() == labels.size() * width, "confusion_matrix: ", outputs.size(),
                " outputs are not ", labels.size(), " rows x ", classes, " classes");
  ConfusionMatrix m;
  m.classes = classes;
  m.counts.assign(width * width, 0);
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const std::int32_t t = labels[r];
    CUTRAIN_CHECK(t >= 0 && t < classes, "confusion_matrix: label ", t, " of row ", r,
                  " is outside [0, ", classes, ")");
    const std::int32_t p = rules::row_argmax(outputs.data() + r * width, classes);
    ++m.counts[static_cast<std::size_t>(t) * width + static_cast<std::size_t>(p)];
  }
  return m;
}

std::int64_t ConfusionMatrix::at(std::int32_t truth, std::int32_t predicted) const {
  CUTRAIN_CHECK(truth >= 0 && truth < classes && predicted >= 0 && predicted < classes,
                "ConfusionMatrix::at(", truth, ", ", predicted, "): outside [0, ", classes, ")");
  return counts[static_cast<std::size_t>(truth) * static_cast<std::size_t>(classes) +
                static_cast<std::size_t>(predicted)];
}

std::int64_t ConfusionMatrix::total() const {
  std::int64_t n = 0;
  for (const std::int64_t c : counts) n += c;
  return n;
}

std::int64_t ConfusionMatrix::rows_of(std::int32_t truth) const {
  std::int64_t n = 0;
  for (std::int32_t p = 0; p < classes; ++p) n += at(truth, p);
  return n;
}

std::int64_t ConfusionMatrix::predicted_as(std::int32_t predicted) const {
  std::int64_t n = 0;
  for (std::int32_t t = 0; t < classes; ++t) n += at(t, predicted);
  return n;
}

double ConfusionMatrix::accuracy() const {
  std::int64_t trace = 0;
  for (std::int32_t c = 0; c < classes; ++c) trace += at(c, c);
  const std::int64_t n = total();
  return n > 0 ? static_cast<double>(trace) / static_cast<double>(n) : 0.0;
}

namespace {
double ratio(std::int64_t a, std::int64_t b) {  // zero_division = 0
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
}
}  // namespace

std::vector<double> ConfusionMatrix::recall() const {
  std::vector<double> r(static_cast<std::size_t>(classes));
  for (std::int32_t c = 0; c < classes; ++c)
    r[static_cast<std::size_t>(c)] = ratio(at(c, c), rows_of(c));
  return r;
}

std::vector<double> ConfusionMatrix::precision() const {
  std::vector<double> r(static_cast<std::size_t>(classes));
  for (std::int32_t c = 0; c < classes; ++c)
    r[static_cast<std::size_t>(c)] = ratio(at(c, c), predicted_as(c));
  return r;
}

std::vector<double> ConfusionMatrix::f1() const {
  const std::vector<double> p = precision(), r = recall();
  std::vector<double> f(p.size());
  for (std::size_t c = 0; c < f.size(); ++c)
    f[c] = p[c] + r[c] > 0 ? 2.0 * p[c] * r[c] / (p[c] + r[c]) : 0.0;
  return f;
}

double ConfusionMatrix::macro_f1() const {
  const std::vector<double> f = f1();
  double sum = 0;
  std::int32_t present = 0;
  for (std::int32_t c = 0; c < classes; ++c) {
    if (rows_of(c) == 0 && predicted_as(c) == 0) continue;  // neither a label nor a prediction
    sum += f[static_cast<std::size_t>(c)];
    ++present;
  }
  return present > 0 ? sum / present : 0.0;
}

}  // namespace cutrain::train
