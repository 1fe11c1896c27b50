// Note [cuDNN loaded at run time] (src/cuda/cudnn.hpp): dlopen, the graph API's entry points, and
// RAII owners of descriptors and handles.
#include "src/cuda/cudnn.hpp"

#include <cstdlib>
#include <sstream>
#include <vector>

#include "cutrain/error.hpp"
#include "src/cuda/runtime.hpp"

#if CUTRAIN_WITH_CUDNN
#include <dlfcn.h>
#endif

namespace cutrain::detail::cudnn {
namespace {

struct Loaded {
  std::size_t version = 0;
  std::string why;
#if CUTRAIN_WITH_CUDNN
  Api api{};
#endif
};

#if CUTRAIN_WITH_CUDNN
// The files tried in order: CUTRAIN_CUDNN_LIBRARY alone when set; else the soname (the library
// search path), then each of CUTRAIN_CUDNN_DIRS.
std::vector<std::string> candidates() {
  if (const char* file = std::getenv("CUTRAIN_CUDNN_LIBRARY"); file != nullptr && *file != '\0')
    return {file};
  std::vector<std::string> out = {"libcudnn.so.9"};
  std::stringstream dirs(CUTRAIN_CUDNN_DIRS);
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty()) out.push_back(dir + "/libcudnn.so.9");
  return out;
}

template <class F>
bool take(void* lib, const char* name, F& f, std::string& why) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (f == nullptr) why = std::string("its library has no ") + name;
  return f != nullptr;
}

Loaded load() {
  Loaded l;
  void* lib = nullptr;
  std::string tried;
  for (const std::string& file : candidates()) {
    // RTLD_LOCAL: its symbols stay out of the process's namespace (PyTorch may load another).
    lib = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib != nullptr) break;
    tried += (tried.empty() ? "" : ", ") + file;
  }
  if (lib == nullptr) {
    l.why = "no cuDNN 9 library (tried " + tried + "; CUTRAIN_CUDNN_LIBRARY names one)";
    return l;
  }
  // Kept open for the process: handles and plans may outlive any one model.
  Api& a = l.api;
  decltype(&cudnnGetVersion) get_version = nullptr;
  if (!take(lib, "cudnnGetVersion", get_version, l.why) ||
      !take(lib, "cudnnGetErrorString", a.error_string, l.why) ||
      !take(lib, "cudnnCreate", a.create, l.why) || !take(lib, "cudnnDestroy", a.destroy, l.why) ||
      !take(lib, "cudnnSetStream", a.set_stream, l.why) ||
      !take(lib, "cudnnBackendCreateDescriptor", a.create_descriptor, l.why) ||
      !take(lib, "cudnnBackendDestroyDescriptor", a.destroy_descriptor, l.why) ||
      !take(lib, "cudnnBackendSetAttribute", a.set_attribute, l.why) ||
      !take(lib, "cudnnBackendGetAttribute", a.get_attribute, l.why) ||
      !take(lib, "cudnnBackendFinalize", a.finalize, l.why) ||
      !take(lib, "cudnnBackendExecute", a.execute, l.why))
    return l;
  const std::size_t v = get_version();
  if (v / 10000 != 9) {  // the header's enums are cuDNN 9's
    l.why = "its library is cuDNN " + std::to_string(v) + ", not 9.x";
    return l;
  }
  l.version = v;
  return l;
}
#else
Loaded load() {
  Loaded l;
  l.why = "cutrain was built without cuDNN's header (cudnn_graph.h)";
  return l;
}
#endif

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

std::size_t version() {
  return loaded().version;
}

const std::string& unavailable_reason() {
  return loaded().why;
}

#if CUTRAIN_WITH_CUDNN

const Api* api() {
  return loaded().version != 0 ? &loaded().api : nullptr;
}

std::string status_name(cudnnStatus_t status) {
  const Api* a = api();
  return a != nullptr ? a->error_string(status) : "status " + std::to_string(status);
}

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) {
  CUTRAIN_CHECK(api() != nullptr, "cuDNN: ", unavailable_reason());
  status_ = api()->create_descriptor(type, &d_);
  if (status_ != CUDNN_STATUS_SUCCESS) d_ = nullptr;
}

Descriptor::~Descriptor() {
  if (d_ != nullptr) api()->destroy_descriptor(d_);
}

Descriptor& Descriptor::operator=(Descriptor&& other) noexcept {
  if (this != &other) {
    if (d_ != nullptr) api()->destroy_descriptor(d_);
    d_ = other.d_;
    status_ = other.status_;
    other.d_ = nullptr;
  }
  return *this;
}

Descriptor& Descriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                            std::int64_t count, const void* values) {
  if (status_ == CUDNN_STATUS_SUCCESS && d_ != nullptr)
    status_ = api()->set_attribute(d_, name, type, count, values);
  return *this;
}

Descriptor& Descriptor::finalize() {
  if (status_ == CUDNN_STATUS_SUCCESS && d_ != nullptr) status_ = api()->finalize(d_);
  return *this;
}

Handle::Handle(int ordinal) {
  CUTRAIN_CHECK(api() != nullptr, "cuDNN: ", unavailable_reason());
  cuda::DeviceGuard guard(ordinal);
  const cudnnStatus_t s = api()->create(&handle_);
  if (s != CUDNN_STATUS_SUCCESS) {
    handle_ = nullptr;
    CUTRAIN_FAIL("cuDNN: cudnnCreate on cuda:", ordinal, " failed: ", status_name(s));
  }
}

Handle::~Handle() {
  if (handle_ != nullptr) api()->destroy(handle_);
}

void Handle::set_stream(NativeStream stream) {
  const cudnnStatus_t s = api()->set_stream(handle_, stream);
  CUTRAIN_CHECK(s == CUDNN_STATUS_SUCCESS, "cuDNN: cudnnSetStream failed: ", status_name(s));
}

#endif  // CUTRAIN_WITH_CUDNN

}  // namespace cutrain::detail::cudnn
