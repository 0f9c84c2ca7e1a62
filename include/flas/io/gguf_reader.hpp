#pragma once
// Reading GGUF files (see gguf_format.hpp), strictly: the whole header is validated at open() (magic,
// version, counts against the file size, value types, string lengths, unique keys and tensor names,
// dimension counts, ggml types, block-size divisibility, sizes that overflow, offsets aligned, inside
// the data section and not overlapping), so a bad file fails there with a message naming the file,
// the key or tensor and what was expected. Tensors come back as zero-copy views of the mapping.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flas/core/shape.hpp"
#include "flas/core/tensor.hpp"
#include "flas/io/gguf_format.hpp"
#include "flas/io/mapped_file.hpp"

namespace flas::io {

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> ne;  // GGUF order: ne[0] fastest
  const gguf::GgmlType* type = nullptr;
  std::uint64_t offset = 0, bytes = 0;  // offset relative to the data section
  // The row-major shape flas uses: ne reversed.
  Shape shape() const {
    std::vector<std::int64_t> d(ne.rbegin(), ne.rend());
    return Shape(d);
  }
};

class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& file) {
    GgufFile f;
    f.path_ = file;
    f.mapping_ = MappedFile::open(file);
    f.parse(f.mapping_->data(), f.mapping_->size());
    return f;
  }

  const std::filesystem::path& path() const { return path_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, gguf::Value>>& metadata() const { return kv_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const gguf::Value& value(std::string_view key) const {
    const gguf::Value* v = find(key);
    if (!v) fail(path_.string(), ": no metadata key '", key, "'");
    return *v;
  }
  // A scalar of exactly type T (no silent conversion: a u32 key stored as i32 is a named error).
  template <class T>
  const T& get(std::string_view key) const {
    const gguf::Value& v = value(key);
    const T* p = v.type == gguf::ValueType::array ? nullptr : std::get_if<T>(&v.scalar);
    if (!p)
      fail(path_.string(), ": metadata key '", key, "' is ", describe(v), ", expected ",
           gguf::value_type_name(gguf::Value::type_of(gguf::Scalar(T{}))));
    return *p;
  }
  template <class T>
  std::vector<T> get_array(std::string_view key) const {
    const gguf::Value& v = value(key);
    const gguf::ValueType want = gguf::Value::type_of(gguf::Scalar(T{}));
    if (v.type != gguf::ValueType::array || v.element_type != want)
      fail(path_.string(), ": metadata key '", key, "' is ", describe(v), ", expected an array of ", gguf::value_type_name(want));
    std::vector<T> out;
    out.reserve(v.elements.size());
    for (const auto& e : v.elements) out.push_back(std::get<T>(e));
    return out;
  }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  bool contains(std::string_view name) const { return find_tensor(name) != nullptr; }
  const GgufTensorInfo& info(std::string_view name) const {
    const GgufTensorInfo* t = find_tensor(name);
    if (!t) fail(path_.string(), ": no tensor named '", name, "' (the file has ", tensors_.size(), " tensors)");
    return *t;
  }
  // The tensor in its own dtype (F32, F16, BF16, I32, I64, F64), shape = ne reversed.
  Tensor get(std::string_view name) const {
    const GgufTensorInfo& t = info(name);
    if (!t.type->dtype) fail(path_.string(), ": tensor '", name, "' is ", t.type->name, ", flas reads F32, F16, BF16, I32, I64 and F64");
    std::byte* data = mapping_->data() + data_start_ + t.offset;
    const DType d = *t.type->dtype;
    if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(d) != 0) {  // alignment 1 or 2 is legal
      Tensor copy = Tensor::empty(t.shape(), d);
      std::memcpy(copy.raw(), data, copy.bytes());
      return copy;
    }
    return Tensor::wrap(data, t.shape(), d, std::shared_ptr<void>(mapping_));
  }

 private:
  GgufFile() = default;

  const gguf::Value* find(std::string_view key) const {
    for (const auto& [k, v] : kv_)
      if (k == key) return &v;
    return nullptr;
  }
  const GgufTensorInfo* find_tensor(std::string_view name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  static std::string describe(const gguf::Value& v) {
    if (v.type != gguf::ValueType::array) return std::string(gguf::value_type_name(v.type));
    return flas::detail::concat("an array of ", gguf::value_type_name(v.element_type));
  }

  // A bounds-checked little-endian cursor over the header; every failure names the file and offset.
  struct Cursor {
    const std::byte* base;
    std::size_t size, pos = 0;
    const std::string& file;
    void need(std::uint64_t n, std::string_view what) const {
      if (n > size - pos)
        fail(file, ": truncated at byte ", pos, ": ", what, " needs ", n, " bytes, ", size - pos, " left");
    }
    template <class T>
    T read(std::string_view what) {
      need(sizeof(T), what);
      T x;
      std::memcpy(&x, base + pos, sizeof(T));
      pos += sizeof(T);
      return x;
    }
    std::string string(std::string_view what) {
      const auto n = read<std::uint64_t>(what);
      need(n, what);
      std::string s(reinterpret_cast<const char*>(base + pos), std::size_t(n));
      pos += std::size_t(n);
      return s;
    }
  };

  gguf::Scalar read_scalar(Cursor& c, gguf::ValueType t, const std::string& key) const;
  void parse(const std::byte* base, std::size_t size);
  void parse_tensor_infos(Cursor& c, std::uint64_t count);
  void check_data_section(std::size_t file_size);

  std::filesystem::path path_;
  std::shared_ptr<MappedFile> mapping_;
  std::uint32_t version_ = 0, alignment_ = gguf::default_alignment;
  std::vector<std::pair<std::string, gguf::Value>> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::uint64_t data_start_ = 0;
};

}  // namespace flas::io

#include "flas/io/gguf_reader_parse.hpp"
