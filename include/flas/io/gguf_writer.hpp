#pragma once
// Writing GGUF files (version 3, see gguf_format.hpp): metadata in the order it was set, tensors in the
// order they were added, packed at the alignment (llama.cpp's reader expects exactly that packing),
// written atomically. Tensor bytes are not copied: the writer keeps the tensors (views of a mapped
// checkpoint stay mapped) and hands their spans to the atomic write.
#include <cstring>
#include <filesystem>
#include <string>
#include <unordered_set>
#include <vector>

#include "flas/core/tensor.hpp"
#include "flas/io/atomic_write.hpp"
#include "flas/io/gguf_format.hpp"

namespace flas::io {

class GgufWriter {
 public:
  static constexpr std::uint32_t max_alignment = 1 << 16;  // the padding is written from a zero buffer of this size
  explicit GgufWriter(std::uint32_t alignment = gguf::default_alignment) : alignment_(alignment) {
    FLAS_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0, "GGUF writer: alignment ", alignment,
               " is not a power of two");
    FLAS_CHECK(alignment <= max_alignment, "GGUF writer: alignment ", alignment, " is above ", max_alignment);
    if (alignment != gguf::default_alignment) set("general.alignment", std::uint32_t(alignment));
  }

  // Sets (or replaces) a key; the type is the C++ type given (std::uint32_t → u32, float → f32, ...).
  GgufWriter& set(const std::string& key, gguf::Scalar value) { return set_value(key, gguf::Value::of(std::move(value))); }
  GgufWriter& set(const std::string& key, const char* value) { return set(key, gguf::Scalar(std::string(value))); }
  template <class T>
  GgufWriter& set_array(const std::string& key, const std::vector<T>& items) {
    std::vector<gguf::Scalar> v(items.begin(), items.end());
    return set_value(key, gguf::Value::array_of(gguf::Value::type_of(gguf::Scalar(T{})), std::move(v)));
  }
  GgufWriter& set_value(const std::string& key, gguf::Value v) {
    FLAS_CHECK(!key.empty(), "GGUF writer: empty metadata key");
    for (auto& [k, old] : kv_)
      if (k == key) {
        old = std::move(v);
        return *this;
      }
    kv_.emplace_back(key, std::move(v));
    return *this;
  }

  // Adds a tensor stored as its own dtype (F32, F16, BF16, I32, I64, F64); shape [rows, cols] is
  // written as ne = {cols, rows}.
  GgufWriter& add_tensor(const std::string& name, Tensor t) {
    FLAS_CHECK(!name.empty() && name.size() <= gguf::max_tensor_name, "GGUF writer: tensor name '", name,
               "' must be 1..", gguf::max_tensor_name, " bytes");
    FLAS_CHECK(t.rank() >= 1 && std::uint32_t(t.rank()) <= gguf::max_dims, "GGUF writer: tensor '", name, "' has rank ",
               t.rank(), ", expected 1..4");
    FLAS_CHECK(names_.insert(name).second, "GGUF writer: tensor '", name, "' added twice");
    gguf::ggml_type_of(t.dtype());  // refuses dtypes ggml has no type for
    tensors_.push_back({name, std::move(t)});
    return *this;
  }

  void write(const std::filesystem::path& file) const {
    std::string header;
    put<std::uint32_t>(header, gguf::magic);
    put<std::uint32_t>(header, gguf::version);
    put<std::uint64_t>(header, tensors_.size());
    put<std::uint64_t>(header, kv_.size());
    for (const auto& [key, v] : kv_) {
      put_string(header, key);
      put<std::uint32_t>(header, std::uint32_t(v.type));
      if (v.type == gguf::ValueType::array) {
        put<std::uint32_t>(header, std::uint32_t(v.element_type));
        put<std::uint64_t>(header, v.elements.size());
        for (const auto& e : v.elements) {
          FLAS_CHECK(gguf::Value::type_of(e) == v.element_type, "GGUF writer: key '", key, "' mixes element types");
          put_scalar(header, e);
        }
      } else {
        put_scalar(header, v.scalar);
      }
    }
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> padding;
    for (const auto& [name, t] : tensors_) {
      put_string(header, name);
      put<std::uint32_t>(header, std::uint32_t(t.rank()));
      for (int d = t.rank() - 1; d >= 0; --d) put<std::uint64_t>(header, std::uint64_t(t.dim(d)));
      put<std::uint32_t>(header, gguf::ggml_type_of(t.dtype()).id);
      put<std::uint64_t>(header, offset);
      const std::uint64_t next = gguf::align_up(offset + t.bytes(), alignment_);
      padding.push_back(next - offset - t.bytes());
      offset = next;
    }
    header.resize(std::size_t(gguf::align_up(header.size(), alignment_)), '\0');
    static const std::vector<std::byte> zeros(max_alignment);
    std::vector<std::span<const std::byte>> parts{std::as_bytes(std::span(header.data(), header.size()))};
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i].second;
      parts.emplace_back(static_cast<const std::byte*>(t.raw()), t.bytes());
      if (padding[i]) parts.emplace_back(zeros.data(), std::size_t(padding[i]));
    }
    write_file_atomically(file, parts);
  }

 private:
  template <class T>
  static void put(std::string& out, T x) {
    char b[sizeof(T)];
    std::memcpy(b, &x, sizeof(T));
    out.append(b, sizeof(T));
  }
  static void put_string(std::string& out, const std::string& s) {
    put<std::uint64_t>(out, s.size());
    out += s;
  }
  static void put_scalar(std::string& out, const gguf::Scalar& s) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) put_string(out, x);
          else if constexpr (std::is_same_v<T, bool>) put<std::uint8_t>(out, x ? 1 : 0);
          else put<T>(out, x);
        },
        s);
  }

  std::uint32_t alignment_;
  std::vector<std::pair<std::string, gguf::Value>> kv_;
  std::vector<std::pair<std::string, Tensor>> tensors_;
  std::unordered_set<std::string> names_;
};

}  // namespace flas::io
