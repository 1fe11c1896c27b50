// cutrain-train's checks of class labels (tools/class_checks.hpp).
#include "tools/class_checks.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace cutrain::tools {
namespace {

// Note [classes without a training sample] (tools/class_checks.hpp).
void note_untrained_classes(std::initializer_list<LabelSource> sources) {
  const LabelSource& train = *sources.begin();
  std::int32_t classes = 0;
  for (const LabelSource& s : sources) classes = std::max(classes, s.d->classes);
  if (train.d->labels.empty() || classes > (1 << 20)) return;  // --max-classes bounds it too
  std::vector<bool> seen(static_cast<std::size_t>(classes), false);
  for (const std::int32_t l : train.d->labels) seen[static_cast<std::size_t>(l)] = true;
  std::vector<std::int32_t> missing;
  for (std::int32_t k = 0; k < classes; ++k)
    if (!seen[static_cast<std::size_t>(k)]) missing.push_back(k);
  if (missing.empty()) return;
  const std::string file = std::string(train.flag) + " '" + train.path + "'";
  if (missing.size() == 1 && missing[0] == 0) {
    std::printf(
        "note: %s has no sample of class 0, its labels running from 1 to %d: 1-based labels (as "
        "R and MATLAB number classes)? The model keeps an output for class 0 that nothing trains "
        "and predicts the labels as given\n",
        file.c_str(), classes - 1);
    return;
  }
  std::string list;
  for (std::size_t k = 0; k < missing.size() && k < 8; ++k)
    list += (k ? ", " : "") + std::to_string(missing[k]);
  std::printf(
      "note: %s has no sample of class%s %s%s (of 0 to %d): the model cannot learn to "
      "predict %s\n",
      file.c_str(), missing.size() > 1 ? "es" : "", list.c_str(), missing.size() > 8 ? ", ..." : "",
      classes - 1, missing.size() > 1 ? "them" : "it");
}

}  // namespace

void check_class_count(const Config& c, std::initializer_list<LabelSource> sources) {
  // One class in the training file (the wrong --target, a float target read as labels that all
  // round alike, a filtered export) trains a model that can say nothing else: the loss and its
  // gradient are 0 with one output, and the run reported a perfect test accuracy. As
  // scikit-learn's classifiers do, refuse it.
  const LabelSource& train = *sources.begin();
  const std::vector<std::int32_t>& labels = train.d->labels;
  if (!labels.empty() && std::all_of(labels.begin(), labels.end(),
                                     [&](std::int32_t l) { return l == labels.front(); })) {
    const std::int32_t l = labels.front();
    const std::string label = static_cast<std::size_t>(l) < train.d->class_names.size()
                                  ? "'" + train.d->class_names[static_cast<std::size_t>(l)] + "'"
                                  : std::to_string(l);
    throw UsageError(std::string(train.flag) + " '" + train.path + "': every one of its " +
                     std::to_string(labels.size()) + " labels is " + label +
                     "; classification needs at least two classes to learn (" +
                     (train.flag == std::string("--train-csv") ? "the wrong --target? " : "") +
                     "a float target? add --regression)");
  }
  for (const LabelSource& s : sources) {
    if (s.d->classes <= c.max_classes || s.d->labels.empty()) continue;
    const std::int32_t top = *std::max_element(s.d->labels.begin(), s.d->labels.end());
    throw UsageError(std::string(s.flag) + " '" + s.path + "' has the label " +
                     std::to_string(top) + ", which makes " + std::to_string(s.d->classes) +
                     " classes, more than --max-classes " + std::to_string(c.max_classes) +
                     " allows (a typo in the labels? raise --max-classes if not)");
  }
  note_untrained_classes(sources);
}

// --class-weights: "balanced" (from the training split, after --val-fraction); one non-negative
// number per class, comma-separated, in label order; or name=weight pairs (a class name, or a
// label number), the classes not named keeping weight 1.
std::vector<float> class_weights(const Config& c, const data::Dataset& train,
                                 const std::vector<std::string>& names) {
  if (c.class_weights.empty()) return {};
  if (c.class_weights == "balanced") {
    try {
      return data::balanced_class_weights(train);
    } catch (const Error& e) {
      throw UsageError(std::string("--class-weights balanced: ") + e.what());
    }
  }
  const bool named = c.class_weights.find('=') != std::string::npos;
  std::vector<float> w(named ? static_cast<std::size_t>(train.classes) : 0, 1.0F);
  std::vector<bool> given(w.size(), false);
  for (std::size_t start = 0; start <= c.class_weights.size();) {
    const std::size_t comma = std::min(c.class_weights.find(',', start), c.class_weights.size());
    const std::string item = c.class_weights.substr(start, comma - start);
    start = comma + 1;
    const std::size_t eq = item.find('=');
    if (named && eq == std::string::npos)
      throw UsageError("--class-weights: '" + item +
                       "' has no name; give every weight as name=weight, or none");
    const std::string key = named ? item.substr(0, eq) : std::string();
    const std::string number = named ? item.substr(eq + 1) : item;
    float v = 0;
    const char* end = number.data() + number.size();
    const auto [ptr, ec] = std::from_chars(number.data(), end, v);
    if (number.empty() || ec != std::errc() || ptr != end || !std::isfinite(v) || v < 0)
      throw UsageError("--class-weights: '" + item +
                       "' is not a finite weight >= 0; give 'balanced', one weight per class "
                       "(e.g. 1,2.5,1) or name=weight pairs (e.g. Shirt=2)");
    if (!named) {
      w.push_back(v);
      continue;
    }
    std::size_t k = std::find(names.begin(), names.end(), key) - names.begin();
    if (k == names.size()) {  // a label number
      int label = -1;
      const auto [lp, lec] = std::from_chars(key.data(), key.data() + key.size(), label);
      if (lec != std::errc() || lp != key.data() + key.size() || label < 0 ||
          label >= train.classes) {
        std::string known;
        for (std::size_t i = 0; i < names.size() && i < 10; ++i)
          known += (i ? ", " : "") + names[i];
        throw UsageError("--class-weights: no class '" + key + "' (classes: " +
                         (known.empty() ? "0 to " + std::to_string(train.classes - 1) : known) +
                         ")");
      }
      k = static_cast<std::size_t>(label);
    }
    if (given[k]) throw UsageError("--class-weights: class '" + key + "' given twice");
    given[k] = true;
    w[k] = v;
  }
  if (static_cast<std::int32_t>(w.size()) != train.classes)
    throw UsageError("--class-weights: " + std::to_string(w.size()) + " weights for " +
                     std::to_string(train.classes) +
                     " classes; give one per class, in label order");
  if (std::none_of(w.begin(), w.end(), [](float v) { return v > 0; }))
    throw UsageError("--class-weights: every weight is 0, so no sample would count");
  return w;
}

}  // namespace cutrain::tools
