#include "cutrain/precision.hpp"

#include <string>

#include "cutrain/error.hpp"

namespace cutrain {

Precision parse_precision(std::string_view text) {
  if (text == "fp32") return Precision::kFp32;
  if (text == "tf32") return Precision::kTf32;
  if (text == "bf16") return Precision::kBf16;
  if (text == "fp16") return Precision::kFp16;
  CUTRAIN_FAIL("unknown precision '", std::string(text), "': expected fp32, tf32, bf16 or fp16");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

Rounding parse_rounding(std::string_view text) {
  if (text == "nearest") return Rounding::kNearestEven;
  if (text == "stochastic") return Rounding::kStochastic;
  CUTRAIN_FAIL("unknown rounding '", std::string(text), "': expected nearest or stochastic");
}

const char* rounding_name(Rounding r) {
  return r == Rounding::kStochastic ? "stochastic" : "nearest";
}

}  // namespace cutrain
