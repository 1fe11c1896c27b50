// A model's parameters in one arena, gradients in a twin, one fused update over everything.
#include <cutrain/cutrain.hpp>

#include <cstdio>
#include <vector>

int main() {
  using namespace cutrain;
  const Device device = default_device();  // the first usable GPU, else the CPU
  std::printf("device: %s\n", describe(device).c_str());
  if (!cuda_status().usable) std::printf("(no GPU: %s)\n", cuda_status().reason.c_str());

  ArenaLayout::Builder builder;
  builder.add("layers.0.weight", {128, 784});
  builder.add("layers.0.bias", {128}, /*group=*/1);  // e.g. a no-weight-decay group
  Arena params(builder.build(), device);
  Arena grads = params.like();  // same layout, zero-filled

  params.tensor_from_host("layers.0.bias", std::vector<float>(128, 1.0F));
  grads.tensor_from_host("layers.0.bias", std::vector<float>(128, 0.5F));
  ops::axpy(-0.1F, grads, params);  // p <- p - 0.1 g, one launch over the whole arena

  const float b0 = params.tensor_to_host("layers.0.bias")[0];
  std::printf("%zu parameters in %zu tensors; bias[0] = %.2f (expected 0.95)\n",
              params.layout().parameter_count(), params.layout().size(), b0);
  return b0 == 1.0F - 0.1F * 0.5F ? 0 : 1;
}
