#pragma once
// safetensors files: an 8-byte little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "BF16", "shape": [4096, 256], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// then the data section (offsets are relative to its start). Reading maps the file and hands out
// zero-copy views; the whole header is validated at open(), so a bad file fails there with a message
// naming the file, the tensor and what was expected, instead of misbehaving later.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"
#include "flas/core/shape.hpp"
#include "flas/core/tensor.hpp"
#include "flas/io/atomic_write.hpp"
#include "flas/io/mapped_file.hpp"

namespace flas::io {

// The dtypes flas reads; safetensors spells them as flas does ("F32", "BF16", ...).
inline std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (DType d : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::I32, DType::U8})
    if (dtype_name(d) == name) return d;
  return std::nullopt;
}

// One header entry. Offsets are relative to the start of the data section.
struct TensorInfo {
  DType dtype = DType::F32;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

namespace detail {

// numel · dtype size, or nullopt when a corrupt shape overflows: every partial product must fit an
// int64, which also keeps Shape::numel() (signed) well defined for shapes with a zero dimension.
inline std::optional<std::uint64_t> checked_byte_size(const std::vector<std::uint64_t>& dims, DType dtype) {
  std::uint64_t bytes = dtype_size(dtype);
  for (std::uint64_t d : dims)
    if (__builtin_mul_overflow(bytes, d, &bytes) || bytes > std::uint64_t(INT64_MAX)) return std::nullopt;
  return bytes;
}

inline std::string offsets_str(std::uint64_t begin, std::uint64_t end) {
  return flas::detail::concat("[", begin, ", ", end, "]");
}

// "the file has 3 tensors, e.g. 'a', 'b', 'c'": helps spot a prefix mismatch in a missing-name error.
inline std::string name_examples(const std::vector<std::string>& names, std::string_view what) {
  std::string s = flas::detail::concat(what, " has ", names.size(), names.size() == 1 ? " tensor" : " tensors");
  for (std::size_t i = 0; i < names.size() && i < 5; ++i) s.append(i ? ", '" : ", e.g. '").append(names[i]).append("'");
  if (names.size() > 5) s += ", ...";
  return s;
}

}  // namespace detail

class SafeTensorsFile {
 public:
  // The reference implementation refuses headers above 100 MB; a larger length means corruption.
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  static SafeTensorsFile open(const std::filesystem::path& file) {
    SafeTensorsFile f;
    f.path_ = file;
    f.mapping_ = MappedFile::open(file);
    f.parse_header();
    return f;
  }

  const std::filesystem::path& path() const { return path_; }
  std::size_t size() const { return entries_.size(); }
  bool contains(std::string_view name) const { return entries_.find(name) != entries_.end(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [name, info] : entries_) out.push_back(name);
    return out;  // std::map keeps them sorted
  }
  const TensorInfo& info(std::string_view name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) fail_missing(name);
    return it->second;
  }
  DType dtype(std::string_view name) const { return info(name).dtype; }
  Shape shape(std::string_view name) const { return info(name).shape; }

  // A view of the mapped bytes that keeps the mapping alive (aligned to the element size, not to
  // HostSpace::alignment). A tensor whose file offset is not a multiple of its element size (legal;
  // flas_tiny_steps.safetensors has I64 at 4-byte offsets) comes back as a fresh copy on every call
  // instead: dereferencing a misaligned int64_t* is undefined behaviour, and vectorised loops may
  // rely on element alignment.
  Tensor get(std::string_view name) const {
    const TensorInfo& t = info(name);
    std::byte* data = mapping_->data() + data_start_ + t.begin;
    if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(t.dtype) != 0) {
      Tensor copy = Tensor::empty(t.shape, t.dtype);
      std::memcpy(copy.raw(), data, copy.bytes());
      return copy;
    }
    return Tensor::wrap(data, t.shape, t.dtype, std::shared_ptr<void>(mapping_));
  }
  // get() that also checks the dtype and shape the caller expects.
  Tensor get(std::string_view name, DType expected, const Shape& expected_shape) const {
    const TensorInfo& t = info(name);
    if (t.dtype != expected || !(t.shape == expected_shape))
      fail(path_.string(), ": tensor '", name, "' is ", dtype_name(t.dtype), " ", t.shape, ", expected ",
           dtype_name(expected), " ", expected_shape);
    return get(name);
  }

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Legal oddities found at open(): unused bytes in the data section, misaligned tensors.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  SafeTensorsFile() = default;

  [[noreturn]] void fail_missing(std::string_view name) const {
    fail(path_.string(), ": no tensor named '", name, "' (", detail::name_examples(names(), "the file"), ")");
  }

  void parse_header() {
    const std::string file = path_.string();
    const std::size_t file_size = mapping_->size();
    if (file_size < 8)
      fail(file, ": file is ", file_size, " bytes, too short for the 8-byte header length that starts a "
           "safetensors file");
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, mapping_->data(), 8);
    if constexpr (std::endian::native == std::endian::big) header_len = __builtin_bswap64(header_len);
    if (header_len > max_header_bytes)
      fail(file, ": header length ", header_len, " is absurd (at most ", max_header_bytes,
           " expected): not a safetensors file, or a corrupt one");
    if (header_len > file_size - 8)
      fail(file, ": header length ", header_len, " runs past the end of the file (only ", file_size - 8,
           " bytes follow the 8-byte length): the file is truncated");
    data_start_ = 8 + header_len;
    const std::uint64_t data_size = file_size - data_start_;

    const auto* text = reinterpret_cast<const char*>(mapping_->data()) + 8;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text, text + header_len);
    } catch (const nlohmann::json::exception& e) {
      fail(file, ": header is not valid JSON (", e.what(), ")");
    }
    if (!header.is_object()) fail(file, ": header must be a JSON object of tensors, found ", header.type_name());

    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        parse_metadata(entry);
        continue;
      }
      entries_.emplace(name, parse_entry(name, entry, data_size));
    }
    check_layout(data_size);
  }

  void parse_metadata(const nlohmann::json& meta) {
    const std::string file = path_.string();
    if (!meta.is_object()) fail(file, ": \"__metadata__\" must be an object of strings, found ", meta.type_name());
    for (const auto& [key, value] : meta.items()) {
      if (!value.is_string())
        fail(file, ": \"__metadata__\" key '", key, "' must be a string, found ", value.type_name());
      metadata_.emplace(key, value.get<std::string>());
    }
  }

  TensorInfo parse_entry(const std::string& name, const nlohmann::json& e, std::uint64_t data_size) const {
    const std::string where = path_.string() + ": tensor '" + name + "': ";
    if (!e.is_object()) fail(where, "entry must be an object, found ", e.type_name());
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!e.contains(key)) fail(where, "entry has no \"", key, "\"");

    const auto& jd = e["dtype"];
    if (!jd.is_string()) fail(where, "\"dtype\" must be a string, found ", jd.type_name());
    const auto dtype = dtype_from_safetensors(jd.get<std::string>());
    if (!dtype)
      fail(where, "unknown dtype '", jd.get<std::string>(), "' (flas reads F32, F64, BF16, F16, I64, I32, U8)");

    const auto& js = e["shape"];
    if (!js.is_array()) fail(where, "\"shape\" must be an array, found ", js.type_name());
    if (js.size() > std::size_t(Shape::max_rank))
      fail(where, "shape has rank ", js.size(), ", more than the ", Shape::max_rank, " flas supports");
    std::vector<std::uint64_t> dims;
    for (std::size_t i = 0; i < js.size(); ++i) {
      if (!js[i].is_number_unsigned() || js[i].get<std::uint64_t>() > std::uint64_t(INT64_MAX))
        fail(where, "shape[", i, "] must be a non-negative integer, found ", js[i].dump());
      dims.push_back(js[i].get<std::uint64_t>());
    }

    const auto& jo = e["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      fail(where, "\"data_offsets\" must be two non-negative integers [begin, end], found ", jo.dump());
    TensorInfo t;
    t.dtype = *dtype;
    t.begin = jo[0].get<std::uint64_t>();
    t.end = jo[1].get<std::uint64_t>();
    const std::string offsets = detail::offsets_str(t.begin, t.end);
    if (t.begin > t.end) fail(where, "data_offsets ", offsets, " are reversed (begin after end)");
    if (t.end > data_size)
      fail(where, "data_offsets ", offsets, " run past the end of the data section (", data_size, " bytes)");

    std::vector<std::int64_t> signed_dims(dims.begin(), dims.end());
    const auto needed = detail::checked_byte_size(dims, t.dtype);
    const std::string shape_str = Shape(std::span<const std::int64_t>(signed_dims)).str();
    if (!needed || *needed != t.end - t.begin)
      fail(where, "data_offsets ", offsets, " hold ", t.end - t.begin, " bytes, but ", dtype_name(t.dtype), " ",
           shape_str, " needs ", needed ? std::to_string(*needed) : std::string("more than 2^63"));
    t.shape = Shape(std::span<const std::int64_t>(signed_dims));
    return t;
  }

  // Tensors may not share bytes; gaps are legal (other writers pad) and only noted.
  void check_layout(std::uint64_t data_size) {
    std::vector<std::pair<const std::string*, const TensorInfo*>> by_offset;
    for (const auto& [name, t] : entries_)
      if (t.end > t.begin) by_offset.emplace_back(&name, &t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
    std::uint64_t covered = 0;
    for (std::size_t i = 0; i < by_offset.size(); ++i) {
      const auto& [name, t] = by_offset[i];
      if (i > 0 && t->begin < by_offset[i - 1].second->end) {
        const auto& [prev_name, prev] = by_offset[i - 1];
        fail(path_.string(), ": tensors '", *prev_name, "' (data_offsets ", detail::offsets_str(prev->begin, prev->end),
             ") and '", *name, "' (data_offsets ", detail::offsets_str(t->begin, t->end), ") overlap");
      }
      covered += t->end - t->begin;
      if ((data_start_ + t->begin) % dtype_size(t->dtype) != 0)
        notes_.push_back(flas::detail::concat("tensor '", *name, "' (", dtype_name(t->dtype), ") starts at file offset ",
                                              data_start_ + t->begin, ", not a multiple of its element size: get() "
                                              "returns an aligned copy instead of a view"));
    }
    if (covered < data_size)
      notes_.push_back(flas::detail::concat("data section is ", data_size, " bytes but tensors cover ", covered, ": ",
                                            data_size - covered, " bytes are unused"));
  }

  std::filesystem::path path_;
  std::shared_ptr<MappedFile> mapping_;
  std::uint64_t data_start_ = 0;
  std::map<std::string, TensorInfo, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::string> notes_;
};

// Writes a safetensors file atomically (write_file_atomically). Tensors are laid out largest element
// size first, then by name, after a header padded with spaces to a multiple of 8 bytes: every tensor
// then starts aligned to its element size, with no gaps (as the reference writer does).
inline void save_safetensors(const std::filesystem::path& file,
                             const std::vector<std::pair<std::string, Tensor>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  const std::string where = file.string();
  std::vector<const std::pair<std::string, Tensor>*> order;
  for (const auto& item : tensors) {
    const auto& [name, t] = item;
    if (name.empty()) fail(where, ": cannot save a tensor with an empty name");
    if (name == "__metadata__") fail(where, ": \"__metadata__\" is reserved and cannot name a tensor");
    if (t.bytes() > 0 && t.raw() == nullptr) fail(where, ": tensor '", name, "' has no data");
    order.push_back(&item);
  }
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    const std::size_t sa = dtype_size(a->second.dtype()), sb = dtype_size(b->second.dtype());
    return sa != sb ? sa > sb : a->first < b->first;
  });

  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto* item : order) {
    const auto& [name, t] = *item;
    if (header.contains(name)) fail(where, ": tensor name '", name, "' appears twice");
    header[name] = {{"dtype", dtype_name(t.dtype())},
                    {"shape", std::vector<std::int64_t>(t.shape().begin(), t.shape().end())},
                    {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;

  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint64_t header_len = text.size();
  if constexpr (std::endian::native == std::endian::big) header_len = __builtin_bswap64(header_len);

  std::vector<std::span<const std::byte>> parts;
  parts.emplace_back(reinterpret_cast<const std::byte*>(&header_len), 8);
  parts.emplace_back(reinterpret_cast<const std::byte*>(text.data()), text.size());
  for (const auto* item : order)
    parts.emplace_back(static_cast<const std::byte*>(item->second.raw()), item->second.bytes());
  write_file_atomically(file, parts);
}

}  // namespace flas::io
