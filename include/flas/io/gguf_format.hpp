#pragma once
// GGUF, llama.cpp's file format (version 3; version 2 reads the same way), little-endian:
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count × { string key | u32 value_type | value }
//   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (u32, default 32) | data section (offsets relative to its start)
// A string is u64 length + bytes (no terminator); an array is u32 element type + u64 count + elements.
// ne[0] is the fastest-varying dimension, so a row-major tensor of shape [rows, cols] has ne = {cols, rows}.
// This header holds what the reader and the writer share: the value model and the ggml type table.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"

namespace flas::io::gguf {

inline constexpr std::uint32_t magic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr std::uint32_t version = 3;
inline constexpr std::uint32_t default_alignment = 32;
inline constexpr std::size_t max_tensor_name = 63;  // ggml's GGML_MAX_NAME (64) with its terminator
inline constexpr std::uint32_t max_dims = 4;        // GGML_MAX_DIMS

enum class ValueType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};

inline std::optional<ValueType> value_type_from(std::uint32_t t) {
  return t <= 12 ? std::optional(ValueType(t)) : std::nullopt;
}

inline std::string_view value_type_name(ValueType t) {
  constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
                                        "u64", "i64", "f64"};
  return names[std::size_t(t)];
}

// Bytes of one element on disk (0 for string and array, which are variable).
inline std::size_t value_size(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    default: return 0;
  }
}

using Scalar = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t, float,
                            bool, std::string, std::uint64_t, std::int64_t, double>;

// One metadata value: a scalar, or an array of scalars of one type (nested arrays are refused, as
// llama.cpp's own reader refuses them).
struct Value {
  ValueType type = ValueType::u32;
  Scalar scalar;
  ValueType element_type = ValueType::u32;  // arrays only
  std::vector<Scalar> elements;             // arrays only

  static Value of(Scalar s) {
    Value v;
    v.scalar = std::move(s);
    v.type = type_of(v.scalar);
    return v;
  }
  static Value array_of(ValueType element, std::vector<Scalar> items) {
    Value v;
    v.type = ValueType::array;
    v.element_type = element;
    v.elements = std::move(items);
    return v;
  }
  // The variant's alternatives are in ValueType order, skipping `array`.
  static ValueType type_of(const Scalar& s) {
    const std::size_t i = s.index();
    return ValueType(i < 9 ? i : i + 1);
  }
};

// ggml tensor types: block size (elements) and bytes per block. Quantised types are listed so that a
// quantised file can be opened and its tensors listed; flas reads the float and integer ones.
struct GgmlType {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t block;
  std::uint32_t block_bytes;
  std::optional<DType> dtype;  // the flas dtype it maps to, if any
};

inline const std::vector<GgmlType>& ggml_types() {
  static const std::vector<GgmlType> types = {
      {0, "F32", 1, 4, DType::F32},       {1, "F16", 1, 2, DType::F16},      {2, "Q4_0", 32, 18, {}},
      {3, "Q4_1", 32, 20, {}},            {6, "Q5_0", 32, 22, {}},           {7, "Q5_1", 32, 24, {}},
      {8, "Q8_0", 32, 34, {}},            {9, "Q8_1", 32, 36, {}},           {10, "Q2_K", 256, 84, {}},
      {11, "Q3_K", 256, 110, {}},         {12, "Q4_K", 256, 144, {}},        {13, "Q5_K", 256, 176, {}},
      {14, "Q6_K", 256, 210, {}},         {15, "Q8_K", 256, 292, {}},        {24, "I8", 1, 1, {}},
      {25, "I16", 1, 2, {}},              {26, "I32", 1, 4, DType::I32},     {27, "I64", 1, 8, DType::I64},
      {28, "F64", 1, 8, DType::F64},      {30, "BF16", 1, 2, DType::BF16},
  };
  return types;
}

inline const GgmlType* find_ggml_type(std::uint32_t id) {
  for (const auto& t : ggml_types())
    if (t.id == id) return &t;
  return nullptr;
}

inline const GgmlType& ggml_type_of(DType d) {
  for (const auto& t : ggml_types())
    if (t.dtype == d) return t;
  fail("GGUF: flas dtype ", dtype_name(d), " has no ggml type");
}

inline std::uint64_t align_up(std::uint64_t x, std::uint64_t alignment) { return (x + alignment - 1) / alignment * alignment; }

}  // namespace flas::io::gguf
