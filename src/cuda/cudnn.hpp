#pragma once
// cuDNN's graph API - the backend descriptors of cudnn_graph.h - for the GPU's convolutions
// (src/nn/conv_cudnn.hpp). CUTRAIN_WITH_CUDA builds; the declarations below need the header
// (CUTRAIN_WITH_CUDNN), everything else compiles without it.
//
// Note [cuDNN loaded at run time]: cutrain does not link cuDNN. Its library is opened on first use
// (dlopen of libcudnn.so.9: the library search path - where PyTorch's wheel or a system install
// puts it -, then the build's CUTRAIN_CUDNN_DIRS, the toolkit's lib64 first among them;
// CUTRAIN_CUDNN_LIBRARY names the file instead), and only the graph API's entry points are taken
// from it. A machine without cuDNN, or a run with CUTRAIN_CUDNN=0, lowers every convolution to
// GEMMs (Note [convolution as one GEMM per chunk]) and says why (unavailable_reason); nothing
// fails to load. The header's enums are cuDNN 9's, stable across its minor versions.

#include <cstdint>
#include <string>

#include "cutrain/stream.hpp"

#if CUTRAIN_WITH_CUDNN
#include <cudnn_graph.h>
#endif

namespace cutrain::detail::cudnn {

/// cuDNN's version (e.g. 91900) when the library is loaded and enabled, else 0.
std::size_t version();
/// Why the library cannot be used ("" when it can): a build without its header, or the dlopen /
/// dlsym failure, naming the files tried.
const std::string& unavailable_reason();

#if CUTRAIN_WITH_CUDNN

/// The graph API's entry points, taken from the library (null when version() is 0).
struct Api {
  decltype(&cudnnGetErrorString) error_string;
  decltype(&cudnnCreate) create;
  decltype(&cudnnDestroy) destroy;
  decltype(&cudnnSetStream) set_stream;
  decltype(&cudnnBackendCreateDescriptor) create_descriptor;
  decltype(&cudnnBackendDestroyDescriptor) destroy_descriptor;
  decltype(&cudnnBackendSetAttribute) set_attribute;
  decltype(&cudnnBackendGetAttribute) get_attribute;
  decltype(&cudnnBackendFinalize) finalize;
  decltype(&cudnnBackendExecute) execute;
};
const Api* api();

/// "CUDNN_STATUS_BAD_PARAM" and the like.
std::string status_name(cudnnStatus_t status);

/// One backend descriptor (RAII). set() and finalize() return the status, so that a caller can
/// turn "cuDNN has no plan for this" into the lowering instead of an error.
class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(Descriptor&& other) noexcept : d_(other.d_), status_(other.status_) {
    other.d_ = nullptr;
  }
  Descriptor& operator=(Descriptor&& other) noexcept;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  /// CUDNN_STATUS_SUCCESS, or the first failure of creation, set() or finalize().
  cudnnStatus_t status() const { return status_; }
  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                  std::int64_t count, const void* values);
  Descriptor& finalize();

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
  cudnnStatus_t status_ = CUDNN_STATUS_SUCCESS;
};

/// One cuDNN handle on a device; set_stream() before each use from another stream.
class Handle {
 public:
  explicit Handle(int ordinal);  ///< throws cutrain::Error when cudnnCreate fails
  ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  cudnnHandle_t get() const { return handle_; }
  void set_stream(NativeStream stream);

 private:
  cudnnHandle_t handle_ = nullptr;
};

#endif  // CUTRAIN_WITH_CUDNN

}  // namespace cutrain::detail::cudnn
