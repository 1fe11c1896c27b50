// Uses the installed cutrain through find_package; prints "consumer ok" when the values agree.
#include <cutrain/cutrain.hpp>

#include <cstdio>

int main() {
  cutrain::ArenaLayout::Builder b;
  b.add("w", {4, 4});
  b.add("b", {4});
  const auto layout = b.build();
  cutrain::Arena x(layout, cutrain::Device::cpu());
  cutrain::Arena y = x.like();
  x.tensor_from_host("b", std::vector<float>{1, 2, 3, 4});
  cutrain::ops::axpy(2.0F, x, y);
  const auto got = y.tensor_to_host("b");
  const bool ok = got == std::vector<float>{2, 4, 6, 8};
  std::printf("cutrain %s on %s: %s\n", CUTRAIN_VERSION_STRING,
              cutrain::default_device().str().c_str(), ok ? "consumer ok" : "WRONG VALUES");
  return ok ? 0 : 1;
}
