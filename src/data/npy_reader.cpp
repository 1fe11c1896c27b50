// NumPy .npy files (include/cutrain/data/npy.hpp). The header is a Python dict literal; this
// reads exactly the three keys numpy.lib.format writes and refuses anything else, so a file is
// either read as numpy would read it or refused with the reason.
#include "cutrain/data/npy.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include "cutrain/arena.hpp"
#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "src/data/label_hints.hpp"

namespace cutrain::data {
namespace {

constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;

// A cursor over the header's dict literal.
struct Literal {
  std::string_view text;
  std::size_t pos = 0;
  const std::string& name;

  void skip_space() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n')) ++pos;
  }
  [[noreturn]] void fail(const std::string& what) const {
    CUTRAIN_FAIL(name, ": .npy header: ", what, " at offset ", pos, " of '", text, "'");
  }
  bool accept(char c) {
    skip_space();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }
  std::string_view string() {
    skip_space();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"')) fail("expected a string");
    const char quote = text[pos++];
    const std::size_t end = text.find(quote, pos);
    if (end == std::string_view::npos) fail("unterminated string");
    const std::string_view s = text.substr(pos, end - pos);
    if (s.find('\\') != std::string_view::npos) fail("escapes in a string");
    pos = end + 1;
    return s;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const std::string_view w(word);
      if (text.substr(pos, w.size()) == w) {
        pos += w.size();
        return value;
      }
    }
    fail("expected True or False");
  }
  std::int64_t integer() {
    skip_space();
    std::int64_t v = 0;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (v > (kMaxElements - 9) / 10) fail("a dimension over 2^40");
      v = v * 10 + (text[pos++] - '0');
    }
    if (pos == start) fail("expected a dimension");
    if (pos < text.size() && text[pos] == 'L') ++pos;  // Python 2's long literal
    return v;
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> dims;
    while (!accept(')')) {
      if (dims.size() >= 32) fail("more than 32 dimensions");
      dims.push_back(integer());
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }
};

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h >> 15) << 31;
  const int exponent = (h >> 10) & 0x1F;
  const std::uint32_t mantissa = h & 0x3FFU;
  if (exponent == 0x1F)  // inf, nan
    return std::bit_cast<float>(sign | 0x7F800000U | (mantissa << 13));
  if (exponent == 0)  // zero, subnormal: mantissa x 2^-24, exact in float
    return (sign != 0 ? -1.0F : 1.0F) * std::ldexp(static_cast<float>(mantissa), -24);
  return std::bit_cast<float>(sign | (static_cast<std::uint32_t>(exponent + 112) << 23) |
                              (mantissa << 13));
}

// Element i (in file order) as a double, and as an integer for the integer kinds.
struct Element {
  double real = 0;
  std::int64_t integer = 0;
  bool is_integer = false;
  bool fits_int64 = true;  // a uint64 over 2^63 does not
};

Element element(const std::uint8_t* data, const NpyHeader& h, std::int64_t i) {
  // The item's bits as an unsigned integer, from either byte order (no host-order assumption).
  const std::uint8_t* src =
      data + static_cast<std::size_t>(i) * static_cast<std::size_t>(h.item_bytes);
  std::uint64_t bits = 0;
  for (int k = 0; k < h.item_bytes; ++k)
    bits = (bits << 8) | src[h.big_endian ? k : h.item_bytes - 1 - k];
  Element e;
  switch (h.kind) {
    case 'f':
      e.real = h.item_bytes == 2   ? half_to_float(static_cast<std::uint16_t>(bits))
               : h.item_bytes == 4 ? std::bit_cast<float>(static_cast<std::uint32_t>(bits))
                                   : std::bit_cast<double>(bits);
      return e;
    case 'b':
      e.is_integer = true;
      e.integer = bits != 0 ? 1 : 0;
      break;
    case 'i': {  // sign-extend from the item's width
      e.is_integer = true;
      const int shift = 64 - 8 * h.item_bytes;
      e.integer = static_cast<std::int64_t>(bits << shift) >> shift;
      break;
    }
    default:  // 'u'
      e.is_integer = true;
      e.fits_int64 = bits <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      e.integer = e.fits_int64 ? static_cast<std::int64_t>(bits) : 0;
      if (!e.fits_int64) e.real = static_cast<double>(bits);
      break;
  }
  if (e.fits_int64) e.real = static_cast<double>(e.integer);
  return e;
}

// Calls f(file_index, c_index) for every element: the identity in C order; in Fortran order
// the file runs the first dimension fastest.
template <class F>
void for_each_element(const NpyHeader& h, F&& f) {
  const std::int64_t n = h.count();
  if (!h.fortran_order || h.shape.size() < 2) {
    for (std::int64_t i = 0; i < n; ++i) f(i, i);
    return;
  }
  const std::size_t rank = h.shape.size();
  std::vector<std::int64_t> c_stride(rank, 1), index(rank, 0);
  for (std::size_t k = rank - 1; k > 0; --k) c_stride[k - 1] = c_stride[k] * h.shape[k];
  std::int64_t c = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    f(i, c);
    for (std::size_t k = 0; k < rank; ++k) {  // the next multi-index, dimension 0 fastest
      c += c_stride[k];
      if (++index[k] < h.shape[k]) break;
      c -= c_stride[k] * h.shape[k];
      index[k] = 0;
    }
  }
}

struct NpyFile {
  std::vector<std::uint8_t> bytes;
  NpyHeader header;
};

NpyFile read_npy(const std::string& path) {
  NpyFile f{read_file(path, std::size_t{1} << 32, npy_declared_size), {}};
  f.header = parse_npy_header(f.bytes, path);
  return f;
}

}  // namespace

namespace {

// "300, 2": a shape as numpy prints it, inside its parentheses.
std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out;
  for (std::size_t k = 0; k < shape.size(); ++k) out += (k ? ", " : "") + std::to_string(shape[k]);
  return shape.size() == 1 ? out + "," : out;
}

// The header alone (the preamble, the dict), from a prefix of the file.
NpyHeader parse_header_text(std::span<const std::uint8_t> bytes, const std::string& name);
}  // namespace

std::optional<std::size_t> npy_declared_size(std::span<const std::uint8_t> prefix) {
  if (prefix.size() < 12) return std::nullopt;
  const bool v1 = prefix[6] == 1;
  const std::size_t start = v1 ? 10 : 12;
  const std::size_t length = v1 ? prefix[8] | (std::size_t{prefix[9]} << 8)
                                : prefix[8] | (std::size_t{prefix[9]} << 8) |
                                      (std::size_t{prefix[10]} << 16) |
                                      (std::size_t{prefix[11]} << 24);
  if (length > (std::size_t{1} << 24)) return SIZE_MAX;  // parse_npy_header says why
  if (prefix.size() < start + length) return std::nullopt;
  try {
    const NpyHeader h = parse_header_text(prefix, "");
    std::size_t size = static_cast<std::size_t>(h.item_bytes);
    for (const std::int64_t d : h.shape) {
      if (d < 0 || (d != 0 && size > (SIZE_MAX - h.data_offset) / static_cast<std::size_t>(d)))
        return SIZE_MAX;
      size *= static_cast<std::size_t>(d);
    }
    return h.data_offset + size;
  } catch (const Error&) {
    return SIZE_MAX;  // a malformed header: the full parse names the fault
  }
}

std::int64_t NpyHeader::count() const {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) n *= d;
  return n;
}

NpyHeader parse_npy_header(std::span<const std::uint8_t> bytes, const std::string& name) {
  NpyHeader h = parse_header_text(bytes, name);
  const std::size_t have = bytes.size() - h.data_offset;
  const auto want = static_cast<std::size_t>(h.count()) * static_cast<std::size_t>(h.item_bytes);
  CUTRAIN_CHECK(have == want, name, ": the shape and dtype make ", want,
                " bytes of data but the file has ", have, have < want ? " (truncated)" : "");
  return h;
}

namespace {
NpyHeader parse_header_text(std::span<const std::uint8_t> bytes, const std::string& name) {
  static constexpr std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  CUTRAIN_CHECK(bytes.size() >= 10 && std::equal(kMagic, kMagic + 6, bytes.begin()), name,
                ": not a .npy file (no \\x93NUMPY magic)");
  const int major = bytes[6];
  CUTRAIN_CHECK(major >= 1 && major <= 3, name, ": .npy format version ", major, ".",
                static_cast<int>(bytes[7]), " is not supported (1.0, 2.0 and 3.0 are)");
  std::size_t length = 0, start = 0;
  if (major == 1) {
    length = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8);
    start = 10;
  } else {
    CUTRAIN_CHECK(bytes.size() >= 12, name, ": truncated .npy header");
    length = bytes[8] | (static_cast<std::size_t>(bytes[9]) << 8) |
             (static_cast<std::size_t>(bytes[10]) << 16) |
             (static_cast<std::size_t>(bytes[11]) << 24);
    start = 12;
  }
  CUTRAIN_CHECK(length <= bytes.size() - start, name, ": the .npy header claims ", length,
                " bytes but the file has ", bytes.size() - start, " after the preamble");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + start), length);
  Literal lit{text, 0, name};
  NpyHeader h;
  h.data_offset = start + length;
  bool have_descr = false, have_order = false, have_shape = false;
  lit.expect('{');
  while (!lit.accept('}')) {
    const std::string_view key = lit.string();
    lit.expect(':');
    if (key == "descr" && !have_descr) {
      lit.skip_space();
      if (lit.pos < text.size() && text[lit.pos] == '[')
        lit.fail("a structured dtype (fields); save plain numeric arrays");
      const std::string_view d = lit.string();
      const bool ok_order =
          !d.empty() && std::string_view("<>|=").find(d[0]) != std::string_view::npos;
      if (!ok_order || d.size() < 3) lit.fail("dtype '" + std::string(d) + "' is not understood");
      h.big_endian = d[0] == '>';
      h.kind = d[1];
      const std::string_view size = d.substr(2);
      h.item_bytes = size == "1" ? 1 : size == "2" ? 2 : size == "4" ? 4 : size == "8" ? 8 : 0;
      const bool valid = (h.kind == 'f' && h.item_bytes >= 2) ||
                         ((h.kind == 'i' || h.kind == 'u') && h.item_bytes > 0) ||
                         (h.kind == 'b' && h.item_bytes == 1);
      if (!valid)
        lit.fail("dtype '" + std::string(d) +
                 "' is not numeric (float16/32/64, integers, bool are read)");
      have_descr = true;
    } else if (key == "fortran_order" && !have_order) {
      h.fortran_order = lit.boolean();
      have_order = true;
    } else if (key == "shape" && !have_shape) {
      h.shape = lit.tuple();
      have_shape = true;
    } else {
      lit.fail("key '" + std::string(key) + "' unexpected or repeated");
    }
    if (!lit.accept(',')) {
      lit.expect('}');
      break;
    }
  }
  CUTRAIN_CHECK(have_descr && have_order && have_shape, name,
                ": .npy header lacks 'descr', 'fortran_order' or 'shape'");
  std::int64_t n = 1;
  for (const std::int64_t d : h.shape) {
    CUTRAIN_CHECK(d == 0 || n <= kMaxElements / d, name, ": shape of over 2^40 elements");
    n *= d;
  }
  return h;
}
}  // namespace

std::vector<float> npy_floats(std::span<const std::uint8_t> bytes, const NpyHeader& h,
                              const std::string& name) {
  CUTRAIN_CHECK(bytes.size() >= h.data_offset + static_cast<std::size_t>(h.count()) *
                                                    static_cast<std::size_t>(h.item_bytes),
                name, ": fewer bytes than the header describes");
  std::vector<float> out(static_cast<std::size_t>(h.count()));
  const std::uint8_t* data = bytes.data() + h.data_offset;
  for_each_element(h, [&](std::int64_t i, std::int64_t c) {
    out[static_cast<std::size_t>(c)] = static_cast<float>(element(data, h, i).real);
  });
  return out;
}

std::vector<std::int32_t> npy_labels(std::span<const std::uint8_t> bytes, const NpyHeader& h,
                                     const std::string& name) {
  CUTRAIN_CHECK(bytes.size() >= h.data_offset + static_cast<std::size_t>(h.count()) *
                                                    static_cast<std::size_t>(h.item_bytes),
                name, ": fewer bytes than the header describes");
  std::vector<std::int32_t> out(static_cast<std::size_t>(h.count()));
  const std::uint8_t* data = bytes.data() + h.data_offset;
  constexpr double kMax = 2147483647.0;
  for_each_element(h, [&](std::int64_t i, std::int64_t c) {
    const Element e = element(data, h, i);
    const bool ok = e.is_integer ? e.fits_int64 && e.integer >= 0 && e.integer <= 2147483647
                                 : e.real >= 0 && e.real <= kMax && e.real == std::floor(e.real);
    CUTRAIN_CHECK(ok, name, ": label ", e.real, " of sample ", c,
                  " is not a class number (an integer in [0, 2^31))", detail::label_hint(e.real));
    out[static_cast<std::size_t>(c)] =
        static_cast<std::int32_t>(e.is_integer ? e.integer : static_cast<std::int64_t>(e.real));
  });
  return out;
}

Dataset load_npy_features(const std::string& x_path) {
  const NpyFile x = read_npy(x_path);
  CUTRAIN_CHECK(!x.header.shape.empty(), x_path,
                ": a scalar, not an array of samples (shape (N, ...) is wanted)");
  Dataset d;
  d.rows = x.header.shape[0];
  // A sample's size checked as it is multiplied: with 0 samples the array's element count says
  // nothing about it ((0, 2^32, 2^32) overflowed to "no features").
  d.features = 1;
  for (std::size_t k = 1; k < x.header.shape.size(); ++k) {
    const std::int64_t dim = x.header.shape[k];
    CUTRAIN_CHECK(dim > 0, x_path, ": samples of no features (dimension ", k, " is 0)");
    CUTRAIN_CHECK(d.features <= kMaxElements / dim, x_path, ": a sample of shape ",
                  shape_str(Shape(x.header.shape.begin() + 1, x.header.shape.end())),
                  " has over 2^40 features");
    d.features *= dim;
  }
  d.x = npy_floats(x.bytes, x.header, x_path);
  for (std::size_t i = 0; i < d.x.size(); ++i)
    CUTRAIN_CHECK(std::isfinite(d.x[i]), x_path, ": feature ",
                  i % static_cast<std::size_t>(d.features), " of sample ",
                  i / static_cast<std::size_t>(d.features), " is ", d.x[i], " (not finite)");
  return d;
}

Dataset load_npy(const std::string& x_path, const std::string& y_path, bool regression) {
  Dataset d = load_npy_features(x_path);
  const NpyFile y = read_npy(y_path);
  const std::vector<std::int64_t>& s = y.header.shape;
  CUTRAIN_CHECK(!s.empty() && s[0] == d.rows, y_path, " has ", s.empty() ? 0 : s[0], " rows but ",
                x_path, " has ", d.rows, " samples");
  if (regression) {
    CUTRAIN_CHECK(s.size() <= 2 && (s.size() == 1 || s[1] > 0), y_path,
                  ": regression targets must be (N) or (N, T) with T > 0");
    d.target_width = s.size() == 1 ? 1 : s[1];
    d.targets = npy_floats(y.bytes, y.header, y_path);
    for (std::size_t i = 0; i < d.targets.size(); ++i)
      CUTRAIN_CHECK(std::isfinite(d.targets[i]), y_path, ": target ", d.targets[i], " of sample ",
                    i / static_cast<std::size_t>(d.target_width), " is not finite");
  } else {
    if (s.size() == 2 && s[1] >= 2) {
      // Keras' to_categorical and PyTorch's F.one_hot write labels as one-hot rows: name that.
      const std::vector<float> rows = npy_floats(y.bytes, y.header, y_path);
      const auto width = static_cast<std::size_t>(s[1]);
      bool one_hot = true;
      for (std::size_t i = 0; i < rows.size() && one_hot; i += width) {
        int ones = 0;
        for (std::size_t k = 0; k < width && one_hot; ++k) {
          ones += rows[i + k] == 1.0F ? 1 : 0;
          one_hot = rows[i + k] == 0.0F || rows[i + k] == 1.0F;
        }
        one_hot = one_hot && ones == 1;
      }
      CUTRAIN_CHECK(!one_hot, y_path, ": class labels of shape (", s[0], ", ", s[1],
                    ") are one-hot rows; give each sample's class index, shape (N): "
                    "numpy.argmax(Y, axis=1)");
    }
    CUTRAIN_CHECK(s.size() == 1 || (s.size() == 2 && s[1] == 1), y_path,
                  ": class labels must be (N) or (N, 1), not of shape (", shape_text(s),
                  "); for float targets use regression");
    d.labels = npy_labels(y.bytes, y.header, y_path);
    const auto top = std::max_element(d.labels.begin(), d.labels.end());
    CUTRAIN_CHECK(top == d.labels.end() || *top < (1 << 24), y_path, ": label ",
                  top == d.labels.end() ? 0 : *top,
                  " is not below 2^24 (class labels number the classes)");
    d.classes = top == d.labels.end() ? 0 : *top + 1;
  }
  d.validate(x_path);
  return d;
}

}  // namespace cutrain::data
