// IDX files (MNIST / Fashion-MNIST). Format: readers.hpp.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "src/data/narrow.hpp"

namespace cutrain::data {
namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::size_t element_size(std::uint8_t type) {
  switch (type) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      return 0;
  }
}

float element(const std::uint8_t* p, std::uint8_t type) {
  switch (type) {
    case 0x08:
      return static_cast<float>(p[0]);
    case 0x09:
      return static_cast<float>(static_cast<std::int8_t>(p[0]));
    case 0x0B:
      return static_cast<float>(static_cast<std::int16_t>((p[0] << 8) | p[1]));
    case 0x0C:
      return static_cast<float>(static_cast<std::int32_t>(be32(p)));
    case 0x0D:
      return std::bit_cast<float>(be32(p));
    case 0x0E: {
      const std::uint64_t bits = (std::uint64_t{be32(p)} << 32) | be32(p + 4);
      // Beyond float's range: the infinity of its sign (Dataset::validate refuses it as a feature).
      return detail::narrow_to_float(std::bit_cast<double>(bits));
    }
  }
  return 0.0F;
}

}  // namespace

IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& name) {
  CUTRAIN_CHECK(!bytes.empty(), name, ": empty file");
  CUTRAIN_CHECK(bytes.size() >= 4, name, ": truncated IDX header (", bytes.size(), " bytes)");
  CUTRAIN_CHECK(bytes[0] == 0 && bytes[1] == 0, name, ": not an IDX file (magic ",
                be32(bytes.data()), " does not start with two zero bytes)");
  IdxArray a;
  a.type = bytes[2];
  const std::size_t esize = element_size(a.type);
  CUTRAIN_CHECK(esize != 0, name, ": unknown IDX element type 0x", std::hex,
                static_cast<int>(a.type));
  const std::size_t ndims = bytes[3];
  CUTRAIN_CHECK(ndims >= 1, name, ": IDX file with 0 dimensions");
  const std::size_t header = 4 + 4 * ndims;
  CUTRAIN_CHECK(bytes.size() >= header, name, ": truncated IDX header (", ndims,
                " dimensions need ", header, " bytes, the file has ", bytes.size(), ")");
  // The element count is checked against the bytes present before any allocation: a header
  // claiming billions of items fails here, not in the allocator.
  const std::size_t available = (bytes.size() - header) / esize;
  std::size_t count = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint32_t dim = be32(bytes.data() + 4 + 4 * d);
    a.dims.push_back(dim);
    CUTRAIN_CHECK(dim == 0 || count <= available / dim, name, ": the header claims more items (",
                  "dimension ", d, " = ", dim, ") than the file's ", bytes.size() - header,
                  " data bytes hold");
    count *= dim;
  }
  CUTRAIN_CHECK(bytes.size() - header == count * esize, name, ": the header's dimensions need ",
                count * esize, " data bytes but the file has ", bytes.size() - header,
                " (truncated or trailing data)");
  a.values.resize(count);
  const std::uint8_t* p = bytes.data() + header;
  for (std::size_t i = 0; i < count; ++i) a.values[i] = element(p + i * esize, a.type);
  return a;
}

std::optional<std::size_t> idx_declared_size(std::span<const std::uint8_t> prefix) {
  if (prefix.size() < 4) return std::nullopt;
  const std::size_t esize = element_size(prefix[2]);
  const std::size_t header = 4 + 4 * std::size_t{prefix[3]};
  if (esize == 0 || prefix[0] != 0 || prefix[1] != 0) return SIZE_MAX;  // parse_idx says why
  if (prefix.size() < header) return std::nullopt;
  std::size_t size = esize;
  for (std::size_t d = 0; d < prefix[3]; ++d) {
    const std::uint32_t dim = be32(prefix.data() + 4 + 4 * d);
    if (dim != 0 && size > (SIZE_MAX - header) / dim) return SIZE_MAX;
    size *= dim;
  }
  return header + size;
}

IdxArray read_idx(const std::string& path) {
  return parse_idx(read_file(path, std::size_t{1} << 32, idx_declared_size), path);
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::int32_t classes) {
  CUTRAIN_CHECK(classes > 0, "load_idx: classes = ", classes, " must be positive");
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  CUTRAIN_CHECK(labels.dims.size() == 1, labels_path, ": labels must be 1-dimensional, not ",
                labels.dims.size(), "-dimensional");
  CUTRAIN_CHECK(images.dims[0] == labels.dims[0], images_path, " has ", images.dims[0],
                " items but ", labels_path, " has ", labels.dims[0]);
  Dataset d;
  d.rows = images.dims[0];
  d.features = 1;
  for (std::size_t i = 1; i < images.dims.size(); ++i) d.features *= images.dims[i];
  d.x = images.values;
  d.classes = classes;
  d.labels.resize(labels.values.size());
  for (std::size_t i = 0; i < labels.values.size(); ++i) {
    const float v = labels.values[i];
    CUTRAIN_CHECK(v >= 0 && v < static_cast<float>(classes) && v == std::floor(v), labels_path,
                  ": label ", v, " of item ", i, " is outside [0, ", classes, ")");
    d.labels[i] = static_cast<std::int32_t>(v);
  }
  d.validate(images_path);  // a NaN or infinite pixel is named with its file here, not later
  return d;
}

Dataset load_fashion_mnist(const std::string& dir, const std::string& split) {
  CUTRAIN_CHECK(split == "train" || split == "test", "load_fashion_mnist: split '", split,
                "' must be train or test");
  const std::string prefix = split == "train" ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    std::string tried;
    for (const char* ext : {"", ".gz"}) {
      std::string path = dir;
      path.append("/").append(prefix).append("-").append(stem).append(ext);
      if (std::filesystem::exists(path)) return path;
      tried.append(tried.empty() ? "" : ", ").append(path);
    }
    CUTRAIN_FAIL("Fashion-MNIST ", split, " file not found (tried ", tried,
                 "); install Debian's dataset-fashion-mnist or pass the directory");
  };
  return load_idx(find("images-idx3-ubyte"), find("labels-idx1-ubyte"), 10);
}

}  // namespace cutrain::data
