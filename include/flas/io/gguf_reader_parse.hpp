#pragma once
// GgufFile's header parser (included by gguf_reader.hpp): the checks, in the order the file is read.
#include <unordered_set>

#include "flas/io/gguf_reader.hpp"

namespace flas::io {

inline gguf::Scalar GgufFile::read_scalar(Cursor& c, gguf::ValueType t, const std::string& key) const {
  const std::string what = "the value of '" + key + "'";
  switch (t) {
    case gguf::ValueType::u8: return c.read<std::uint8_t>(what);
    case gguf::ValueType::i8: return c.read<std::int8_t>(what);
    case gguf::ValueType::u16: return c.read<std::uint16_t>(what);
    case gguf::ValueType::i16: return c.read<std::int16_t>(what);
    case gguf::ValueType::u32: return c.read<std::uint32_t>(what);
    case gguf::ValueType::i32: return c.read<std::int32_t>(what);
    case gguf::ValueType::f32: return c.read<float>(what);
    case gguf::ValueType::u64: return c.read<std::uint64_t>(what);
    case gguf::ValueType::i64: return c.read<std::int64_t>(what);
    case gguf::ValueType::f64: return c.read<double>(what);
    case gguf::ValueType::string: return c.string(what);
    case gguf::ValueType::boolean: {
      const auto b = c.read<std::uint8_t>(what);
      if (b > 1) fail(c.file, ": metadata key '", key, "' is a bool stored as ", int(b), ", expected 0 or 1");
      return b == 1;
    }
    case gguf::ValueType::array: break;
  }
  fail(c.file, ": metadata key '", key, "': arrays of arrays are not supported");
}

inline void GgufFile::parse(const std::byte* base, std::size_t size) {
  const std::string file = path_.string();
  Cursor c{base, size, 0, file};
  const auto m = c.read<std::uint32_t>("the magic");
  if (m != gguf::magic) fail(file, ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  version_ = c.read<std::uint32_t>("the version");
  if (version_ == 0x03000000u || version_ == 0x02000000u) fail(file, ": a big-endian GGUF file; flas reads little-endian ones");
  if (version_ == 1) fail(file, ": GGUF version 1 (32-bit counts) is not supported; expected version 2 or 3");
  if (version_ != 2 && version_ != 3) fail(file, ": GGUF version ", version_, ", expected 2 or 3");
  const auto n_tensors = c.read<std::uint64_t>("the tensor count");
  const auto n_kv = c.read<std::uint64_t>("the metadata count");
  // Each entry takes at least 12 (kv: key length + type) or 24 bytes (tensor): a count above what the
  // file can hold is corruption, refused before anything is allocated for it.
  if (n_kv > (size - c.pos) / 12) fail(file, ": metadata count ", n_kv, " cannot fit in a file of ", size, " bytes");
  if (n_tensors > (size - c.pos) / 24) fail(file, ": tensor count ", n_tensors, " cannot fit in a file of ", size, " bytes");

  std::unordered_set<std::string> keys;
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string(flas::detail::concat("metadata key #", i));
    if (key.empty()) fail(file, ": metadata key #", i, " is empty");
    if (!keys.insert(key).second) fail(file, ": metadata key '", key, "' appears twice");
    const auto raw_type = c.read<std::uint32_t>("the type of '" + key + "'");
    const auto type = gguf::value_type_from(raw_type);
    if (!type) fail(file, ": metadata key '", key, "' has value type ", raw_type, ", expected 0..12");
    gguf::Value v;
    v.type = *type;
    if (*type == gguf::ValueType::array) {
      const auto raw_elem = c.read<std::uint32_t>("the element type of '" + key + "'");
      const auto elem = gguf::value_type_from(raw_elem);
      if (!elem) fail(file, ": metadata key '", key, "' is an array of value type ", raw_elem, ", expected 0..12");
      if (*elem == gguf::ValueType::array) fail(file, ": metadata key '", key, "': arrays of arrays are not supported");
      const auto n = c.read<std::uint64_t>("the length of '" + key + "'");
      const std::uint64_t min_size = *elem == gguf::ValueType::string ? 8 : gguf::value_size(*elem);
      if (n > (size - c.pos) / min_size)
        fail(file, ": metadata key '", key, "' claims ", n, " elements, more than the file holds");
      v.element_type = *elem;
      v.elements.reserve(std::size_t(n));
      for (std::uint64_t j = 0; j < n; ++j) v.elements.push_back(read_scalar(c, *elem, key));
    } else {
      v.scalar = read_scalar(c, *type, key);
    }
    kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const gguf::Value* a = find("general.alignment")) {
    const auto* p = a->type == gguf::ValueType::u32 ? std::get_if<std::uint32_t>(&a->scalar) : nullptr;
    if (!p) fail(file, ": metadata key 'general.alignment' is not a u32");
    if (*p == 0 || (*p & (*p - 1)) != 0) fail(file, ": general.alignment is ", *p, ", expected a power of two");
    alignment_ = *p;
  }
  parse_tensor_infos(c, n_tensors);
  data_start_ = gguf::align_up(c.pos, alignment_);
  check_data_section(size);
}

inline void GgufFile::parse_tensor_infos(Cursor& c, std::uint64_t count) {
  const std::string& file = c.file;
  std::unordered_set<std::string> names;
  tensors_.reserve(std::size_t(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    GgufTensorInfo t;
    t.name = c.string(flas::detail::concat("the name of tensor #", i));
    if (t.name.empty()) fail(file, ": tensor #", i, " has an empty name");
    if (t.name.size() > gguf::max_tensor_name)
      fail(file, ": tensor name '", t.name.substr(0, 80), "...' is ", t.name.size(), " bytes, at most ", gguf::max_tensor_name);
    if (!names.insert(t.name).second) fail(file, ": tensor '", t.name, "' appears twice");
    const auto n_dims = c.read<std::uint32_t>("the rank of '" + t.name + "'");
    if (n_dims == 0 || n_dims > gguf::max_dims) fail(file, ": tensor '", t.name, "' has ", n_dims, " dimensions, expected 1..4");
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      t.ne.push_back(c.read<std::uint64_t>("the shape of '" + t.name + "'"));
      if (t.ne.back() > std::uint64_t(INT64_MAX)) fail(file, ": tensor '", t.name, "' has dimension ", d, " of ", t.ne.back());
    }
    const auto type_id = c.read<std::uint32_t>("the type of '" + t.name + "'");
    t.type = gguf::find_ggml_type(type_id);
    if (!t.type) fail(file, ": tensor '", t.name, "' has ggml type ", type_id, ", which flas does not know");
    t.offset = c.read<std::uint64_t>("the offset of '" + t.name + "'");
    if (t.ne[0] % t.type->block != 0)
      fail(file, ": tensor '", t.name, "' is ", t.type->name, " with a first dimension of ", t.ne[0],
           ", not a multiple of its block size ", t.type->block);
    std::uint64_t n = 1;
    for (auto d : t.ne)
      if (__builtin_mul_overflow(n, d, &n) || n > std::uint64_t(INT64_MAX))
        fail(file, ": tensor '", t.name, "' has a shape whose element count overflows");
    if (__builtin_mul_overflow(n / t.type->block, std::uint64_t(t.type->block_bytes), &t.bytes))
      fail(file, ": tensor '", t.name, "' has a byte size that overflows");
    if (t.offset % alignment_ != 0)
      fail(file, ": tensor '", t.name, "' is at data offset ", t.offset, ", not a multiple of the alignment ", alignment_);
    tensors_.push_back(std::move(t));
  }
}

inline void GgufFile::check_data_section(std::size_t file_size) {
  const std::string file = path_.string();
  if (data_start_ > file_size) {
    if (!tensors_.empty()) fail(file, ": the data section would start at byte ", data_start_, ", past the end (", file_size, " bytes)");
    return;
  }
  const std::uint64_t data_size = file_size - data_start_;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    if (t.offset > data_size || t.bytes > data_size - t.offset)
      fail(file, ": tensor '", t.name, "' (", t.bytes, " bytes at data offset ", t.offset, ") runs past the end of the data section (",
           data_size, " bytes)");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
      fail(file, ": tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name, "' overlap in the data section");
}

}  // namespace flas::io
