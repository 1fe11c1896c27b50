#pragma once
// What Sequential hands its layers through LayerContext (see include/cutrain/nn/layer.hpp).

#include <memory>
#include <string>
#include <vector>

#include "cutrain/nn/layer.hpp"
#include "kernels/nn/batch_sync.hpp"
#include "src/nn/backend.hpp"

namespace cutrain::nn {

struct LayerContext::Resources {
  Device device;
  NativeStream stream = nullptr;
  void* cublas = nullptr;  // cublasHandle_t on CUDA
  void* lt = nullptr;      // detail::LtMatmul on CUDA (Note [bias in the GEMM epilogue])
  // Note [convolutions on cuDNN]: the model's detail::cudnn::Handle, made by the first
  // convolution that asks (cudnn_conv::handle); null where cuDNN is not used, and why.
  std::shared_ptr<void> cudnn;
  bool cudnn_tried = false;
  std::string cudnn_why;
  Arena* parameters = nullptr;
  Arena* gradients = nullptr;
  Arena* buffers = nullptr;
  std::vector<float*> workspaces;  // per layer, sized for the current batch
  std::vector<Shape> shapes;       // shapes[i]: layer i's input shape, back(): the output's
  std::uint64_t seed = 0;
  Replica replica;                 // Note [replica rows]: Sequential::set_replica
  std::int64_t training_rows = 0;  // Note [dropout stream]: Sequential::set_training_rows
  // Note [synchronized batch statistics]: Sequential::set_batch_statistics_sum's (empty: none).
  kernels::BatchSync::Sum batch_sum;
  // Note [forward count in device memory]: training forwards before the current one, on the
  // model's device (null when no layer reads it).
  std::uint64_t* forward_count = nullptr;
  // Note [16-bit values in fp32 storage] (cutrain/precision.hpp): bf16 / fp16, and the
  // parameters rounded to it, which the layers read in place of the master (null in fp32 / tf32).
  Precision precision = Precision::kFp32;
  Arena* compute = nullptr;
  backend::Exec exec() const { return {device, stream, cublas, lt, precision}; }
};

// The 16-bit format of a bf16 / fp16 model (Note [16-bit values in fp32 storage]).
inline rules::Half half_format(Precision p) {
  return p == Precision::kFp16 ? rules::Half::kFp16 : rules::Half::kBf16;
}

inline backend::Exec exec_of(LayerContext& ctx) {
  return ctx.resources().exec();
}

// "layers.{i}." + name
std::string tensor_name(std::size_t layer, const std::string& name);

}  // namespace cutrain::nn
