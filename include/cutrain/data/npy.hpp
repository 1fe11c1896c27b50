#pragma once
// NumPy's .npy files (numpy.save; numpy.lib.format versions 1.0, 2.0 and 3.0), plain or gzipped:
// the magic "\x93NUMPY", the version, the header's length, then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), } and the elements. Element
// types: float16/32/64 ('f2', 'f4', 'f8'), signed and unsigned integers of 1, 2, 4 and 8 bytes,
// bool ('b1'); either byte order; C or Fortran order (read back in C order). Structured and
// object arrays are refused. Every malformed input gives cutrain::Error naming the file and what
// is wrong; the element count the header claims is checked against the bytes present before
// anything is allocated from it.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cutrain/data/dataset.hpp"

namespace cutrain::data {

/// A parsed .npy header: dtype, byte order, memory order, shape and where the data starts.
struct NpyHeader {
  std::vector<std::int64_t> shape;  ///< () for a scalar: one element
  char kind = 'f';                  ///< 'f' float, 'i' signed, 'u' unsigned, 'b' bool
  int item_bytes = 4;               ///< bytes per element
  bool big_endian = false;          ///< '>' in descr
  bool fortran_order = false;       ///< column-major data
  std::size_t data_offset = 0;      ///< where the elements start
  std::int64_t count() const;       ///< the product of shape
};

NpyHeader parse_npy_header(std::span<const std::uint8_t> bytes, const std::string& name);

/// The elements as float in C (row-major) order. Integers beyond 2^24 and float64 lose precision
/// as a float cast does (numpy's astype(float32)).
std::vector<float> npy_floats(std::span<const std::uint8_t> bytes, const NpyHeader& h,
                              const std::string& name);

/// Class labels: integers (or integral floats) in [0, 2^31).
std::vector<std::int32_t> npy_labels(std::span<const std::uint8_t> bytes, const NpyHeader& h,
                                     const std::string& name);

/// A data set from a feature array x (N, ...) - each sample's elements in C order are its
/// features - and a target array y of N rows: class labels (N) or (N, 1), classes = max + 1; or,
/// with regression, float targets (N) or (N, T). Features must be finite.
Dataset load_npy(const std::string& x_path, const std::string& y_path, bool regression = false);

/// Features only (N, ...), for predictions.
Dataset load_npy_features(const std::string& x_path);

}  // namespace cutrain::data
