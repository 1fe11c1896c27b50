#pragma once
// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}, then the tensor bytes (offsets relative to their start).
// PyTorch (safetensors.torch), numpy and other tools read what cutrain writes, and vice versa.
//
// Writing is atomic (io::write_file_atomic, cutrain/io/file.hpp): the previous file survives a
// crash at any point. Reading is defensive: the header
// length is bounded, every offset and shape is checked against the file size before anything is
// allocated from it, and every fault is a cutrain::Error naming the file and the tensor.
//
// Note [data checksum]: every file cutrain writes carries the CRC-32 of its data section in the
// metadata (kDataCrcKey, 8 hex digits), and reading checks it when present: a file damaged after
// it was written (a partial copy of the right length, a flipped bit on disk) is refused instead
// of resuming from silently wrong weights. Other tools ignore the extra metadata entry; files
// they write have none and are read unchecked.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cutrain/arena.hpp"

namespace cutrain::io {

inline constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  ///< as the reference implementation
inline constexpr const char* kDataCrcKey = "cutrain.data_crc32";

/// Element types cutrain reads and writes: F32, I64 (BatchNorm's num_batches_tracked), and the
/// 16-bit floats BF16 and F16 (a 16-bit export, Note [16-bit exports]).
enum class DType { kF32, kI64, kBf16, kF16 };
const char* dtype_name(DType t);     ///< "F32", "I64", "BF16", "F16" (safetensors' names)
std::size_t element_bytes(DType t);  ///< 4, 8, 2, 2
/// True for the floating-point types (floats() reads them).
constexpr bool is_float(DType t) {
  return t != DType::kI64;
}

/// One tensor as stored in a safetensors file: name, dtype, shape and raw little-endian bytes.
struct TensorData {
  std::string name;                 ///< the tensor's name
  DType dtype = DType::kF32;        ///< the element type
  Shape shape;                      ///< its dimensions
  std::vector<std::uint8_t> bytes;  ///< little-endian
  /// The values as floats: F32 as stored, BF16 / F16 widened (exactly); I64 is an error.
  std::vector<float> floats() const;
};

/// A whole safetensors file: its tensors and its string metadata.
struct SafetensorsFile {
  std::vector<TensorData> tensors;                      ///< in file order
  std::map<std::string, std::string> metadata;          ///< the header's __metadata__
  const TensorData* find(std::string_view name) const;  ///< null if absent
};

/// Adds kDataCrcKey to the metadata (replacing a stale one).
void save_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                      const std::map<std::string, std::string>& metadata);
SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, const std::string& name);
SafetensorsFile load_safetensors(const std::string& path);

/// A tensor of `values` stored as `dtype` - F32 as they are, BF16 / F16 (Note [16-bit exports],
/// cutrain/train/checkpoint.hpp) rounded to nearest even (kernels/common/half.cuh, torch's
/// .to(torch.bfloat16) / float16). A finite value beyond F16's range (|x| >= 65520, which would
/// round to inf) is a cutrain::Error naming the tensor, the element and the value: a model that
/// would load as infinities is not written.
TensorData make_tensor(std::string name, Shape shape, std::span<const float> values,
                       DType dtype = DType::kF32);

}  // namespace cutrain::io
