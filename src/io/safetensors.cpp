#include "cutrain/io/safetensors.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cutrain/data/readers.hpp"
#include "cutrain/error.hpp"
#include "cutrain/io/file.hpp"
#include "kernels/common/half.cuh"

namespace cutrain::io {
namespace {

// Note [data checksum]: zlib's CRC-32, continued over consecutive pieces (the CRC of the whole
// data section is the running CRC over the tensors in file order), fed in pieces of at most
// 1 GiB because zlib's crc32 takes a uInt length.
uLong crc32_continue(uLong crc, const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t at = 0; at < size; at += kPiece)
    crc = crc32(crc, data + at, static_cast<uInt>(std::min(kPiece, size - at)));
  return crc;
}

std::string hex8(std::uint32_t v) {
  char text[9];
  std::snprintf(text, sizeof(text), "%08x", v);
  return text;
}

}  // namespace

std::size_t element_bytes(DType t) {
  return t == DType::kI64 ? 8 : t == DType::kF32 ? 4 : 2;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kI64:
      return "I64";
    case DType::kBf16:
      return "BF16";
    case DType::kF16:
      return "F16";
  }
  return "?";
}

std::vector<float> TensorData::floats() const {
  CUTRAIN_CHECK(is_float(dtype), "tensor '", name, "' is ", dtype_name(dtype),
                ", not a float type");
  std::vector<float> v(bytes.size() / element_bytes(dtype));
  // A 0-element tensor (a 0 in its shape) has no data: memcpy with a null pointer is undefined
  // even for 0 bytes (UBSan, found by the fuzzer). x86-64 and aarch64 are little-endian.
  if (v.empty()) return v;
  if (dtype == DType::kF32) {
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto h = static_cast<std::uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    v[i] = dtype == DType::kBf16 ? rules::from_bf16(h) : rules::from_fp16(h);
  }
  return v;
}

const TensorData* SafetensorsFile::find(std::string_view name) const {
  for (const TensorData& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

TensorData make_tensor(std::string name, Shape shape, std::span<const float> values, DType dtype) {
  CUTRAIN_CHECK(is_float(dtype), "make_tensor('", name, "'): ", dtype_name(dtype),
                " is not a float type");
  TensorData t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * element_bytes(dtype));
  if (t.bytes.empty()) return t;
  if (dtype == DType::kF32) {
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
    return t;
  }
  // Note [16-bit exports]: nearest even, as torch's .to(); F16 overflow refused.
  const rules::Half kind = dtype == DType::kBf16 ? rules::Half::kBf16 : rules::Half::kFp16;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint16_t h = rules::to_half(kind, values[i]);
    CUTRAIN_CHECK(dtype != DType::kF16 || !std::isfinite(values[i]) || (h & 0x7FFFU) != 0x7C00U,
                  "tensor '", t.name, "' element ", i, " is ", values[i],
                  ", beyond float16's largest value 65504: export it as BF16 or F32");
    t.bytes[2 * i] = static_cast<std::uint8_t>(h & 0xFFU);
    t.bytes[2 * i + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  return t;
}

void save_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const TensorData& t : tensors) crc = crc32_continue(crc, t.bytes.data(), t.bytes.size());
  std::map<std::string, std::string> meta = metadata;
  meta[kDataCrcKey] = hex8(static_cast<std::uint32_t>(crc));
  header["__metadata__"] = meta;
  std::size_t offset = 0;
  for (const TensorData& t : tensors) {
    CUTRAIN_CHECK(!t.name.empty() && t.name != "__metadata__", "safetensors: bad tensor name '",
                  t.name, "'");
    std::size_t n = 1;
    for (const auto d : t.shape) {
      CUTRAIN_CHECK(d >= 0, "safetensors: tensor '", t.name, "' has a negative dimension");
      n *= static_cast<std::size_t>(d);
    }
    CUTRAIN_CHECK(n * element_bytes(t.dtype) == t.bytes.size(), "safetensors: tensor '", t.name,
                  "' has ", t.bytes.size(), " bytes for shape ", shape_str(t.shape));
    CUTRAIN_CHECK(!header.contains(t.name), "safetensors: tensor name '", t.name, "' repeated");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  // Metadata may hold bytes that are not UTF-8 (a file name in the command line: Linux paths are
  // bytes): written as U+FFFD instead of failing the save (Note [CSV text is UTF-8]).
  std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::vector<std::uint8_t> out(8 + text.size() + offset);
  const std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::size_t at = 8 + text.size();
  for (const TensorData& t : tensors) {
    if (!t.bytes.empty()) std::memcpy(out.data() + at, t.bytes.data(), t.bytes.size());
    at += t.bytes.size();
  }
  write_file_atomic(path, out);
}

SafetensorsFile parse_safetensors(std::span<const std::uint8_t> bytes, const std::string& name) {
  CUTRAIN_CHECK(bytes.size() >= 8, name, ": not a safetensors file (", bytes.size(),
                " bytes, shorter than the 8-byte header length)");
  // The file starts with its header's length, a little-endian integer under kMaxHeaderBytes, so
  // its high bytes are zero; a text file (a CSV given as a model) starts with characters.
  const std::size_t shown = std::min<std::size_t>(bytes.size(), 24);
  const auto printable = [](std::uint8_t c) {
    return (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
  };
  if (std::all_of(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(shown), printable)) {
    std::string start(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(shown));
    std::replace_if(
        start.begin(), start.end(), [](char c) { return c < 0x20; }, ' ');
    CUTRAIN_FAIL(name, ": not a safetensors file: it begins with text ('", start,
                 bytes.size() > shown ? "...'" : "'", ")");
  }
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t{bytes[static_cast<std::size_t>(i)]} << (8 * i);
  CUTRAIN_CHECK(n <= kMaxHeaderBytes, name,
                ": not a safetensors file, or a damaged one: its header "
                "length (the first 8 bytes) reads ",
                n, ", past the ", kMaxHeaderBytes, "-byte limit");
  CUTRAIN_CHECK(n <= bytes.size() - 8, name, ": header length ", n, " runs past the end of the ",
                bytes.size(), "-byte file (truncated?)");
  nlohmann::ordered_json header;  // ordered: tensors come back in file order
  // A name given twice would load whichever entry the JSON reader keeps: refused, as the
  // reference loader does (the parser reports each key of the top-level object as it reads it).
  std::set<std::string> names;
  std::string duplicate;
  const auto once = [&](int depth, nlohmann::ordered_json::parse_event_t event,
                        nlohmann::ordered_json& parsed) {
    if (depth == 1 && event == nlohmann::ordered_json::parse_event_t::key &&
        !names.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    header = nlohmann::ordered_json::parse(
        bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), once);
  } catch (const nlohmann::ordered_json::exception& e) {
    CUTRAIN_FAIL(name, ": the header is not valid JSON (", e.what(), ")");
  }
  CUTRAIN_CHECK(duplicate.empty(), name, ": the header names '", duplicate, "' twice");
  CUTRAIN_CHECK(header.is_object(), name, ": the header is not a JSON object");
  const std::size_t data_size = bytes.size() - 8 - static_cast<std::size_t>(n);
  const std::uint8_t* data = bytes.data() + 8 + n;
  SafetensorsFile f;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      CUTRAIN_CHECK(it->is_object(), name, ": __metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        CUTRAIN_CHECK(m->is_string(), name, ": metadata '", m.key(), "' is not a string");
        f.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string& tn = it.key();
    const nlohmann::ordered_json& e = *it;
    CUTRAIN_CHECK(
        e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
        name, ": tensor '", tn, "' needs dtype, shape and data_offsets");
    CUTRAIN_CHECK(e["dtype"].is_string(), name, ": tensor '", tn, "': dtype is not a string");
    const std::string dtype = e["dtype"].get<std::string>();
    TensorData t;
    t.name = tn;
    if (dtype == "F32") {
      t.dtype = DType::kF32;
    } else if (dtype == "I64") {
      t.dtype = DType::kI64;
    } else if (dtype == "BF16") {
      t.dtype = DType::kBf16;
    } else if (dtype == "F16") {
      t.dtype = DType::kF16;
    } else {
      CUTRAIN_FAIL(name, ": tensor '", tn, "' has dtype ", dtype,
                   "; cutrain reads F32, BF16, F16 (and I64) tensors");
    }
    const auto& shape = e["shape"];
    const auto& offs = e["data_offsets"];
    CUTRAIN_CHECK(shape.is_array() && shape.size() <= 8, name, ": tensor '", tn,
                  "': shape must be an array of at most 8 dimensions");
    CUTRAIN_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() &&
                      offs[1].is_number_unsigned(),
                  name, ": tensor '", tn, "': data_offsets must be two non-negative integers");
    const auto begin = offs[0].get<std::uint64_t>(), end = offs[1].get<std::uint64_t>();
    CUTRAIN_CHECK(begin <= end && end <= data_size, name, ": tensor '", tn, "': data_offsets [",
                  begin, ", ", end, "] outside the ", data_size, " data bytes");
    std::uint64_t count = 1;
    for (const auto& d : shape) {
      CUTRAIN_CHECK(d.is_number_unsigned() && d.get<std::uint64_t>() <= INT64_MAX, name,
                    ": tensor '", tn, "': dimensions must be non-negative 64-bit integers");
      const auto v = d.get<std::uint64_t>();
      CUTRAIN_CHECK(v == 0 || count <= data_size / v, name, ": tensor '", tn,
                    "': shape is larger than the file");
      count *= v;
      t.shape.push_back(static_cast<std::int64_t>(v));
    }
    CUTRAIN_CHECK(count * element_bytes(t.dtype) == end - begin, name, ": tensor '", tn,
                  "': shape ", shape_str(t.shape), " needs ", count * element_bytes(t.dtype),
                  " bytes but data_offsets give ", end - begin);
    ranges.emplace_back(begin, end);
    t.bytes.assign(data + begin, data + end);
    f.tensors.push_back(std::move(t));
  }
  // The tensors tile the data exactly (the reference loader's rule): no overlap, no gap, no
  // trailing bytes that no tensor claims.
  std::sort(ranges.begin(), ranges.end());
  std::size_t covered = 0;
  for (const auto& [begin, end] : ranges) {
    CUTRAIN_CHECK(begin >= covered, name, ": two tensors' data_offsets overlap");
    CUTRAIN_CHECK(begin == covered, name, ": bytes [", covered, ", ", begin,
                  ") of the data belong to no tensor");
    covered = end;
  }
  CUTRAIN_CHECK(covered == data_size, name, ": the last ", data_size - covered,
                " bytes of the data belong to no tensor");
  // Note [data checksum]: files from other writers have no checksum and load as they are.
  const auto stored = f.metadata.find(kDataCrcKey);
  if (stored != f.metadata.end()) {
    const std::string& text = stored->second;
    std::uint32_t want = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), want, 16);
    CUTRAIN_CHECK(text.size() == 8 && ec == std::errc() && end == text.data() + text.size(), name,
                  ": metadata '", kDataCrcKey, "' = '", text, "' is not 8 hex digits");
    const auto got =
        static_cast<std::uint32_t>(crc32_continue(crc32(0L, Z_NULL, 0), data, data_size));
    CUTRAIN_CHECK(got == want, name, ": the tensor data does not match its checksum (CRC-32 ",
                  hex8(got), ", the header says ", text,
                  "): the file was damaged after it was written (a partial copy, a storage error); "
                  "use an intact copy or an earlier checkpoint");
  }
  return f;
}

SafetensorsFile load_safetensors(const std::string& path) {
  // Safetensors is never compressed (neither this library nor the reference writes gzip), so a
  // gzip stream is refused rather than inflated up to the size cap.
  return parse_safetensors(data::read_file(path, std::size_t{1} << 32, {}, data::Gzip::kRefuse),
                           path);
}

}  // namespace cutrain::io
