#pragma once
// GGUF (llama.cpp's format): header, metadata of every value type, tensor infos and the data section;
// the same file also as a llama.cpp control vector. An accepted file must hand out tensors that lie
// inside it with the byte size its infos promise: every byte of every readable tensor is read, so ASan
// sees any view that escapes the mapping.
#include <cstdint>
#include <string_view>

#include "flas/interop/control_vector.hpp"
#include "flas/io/gguf_reader.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_gguf(std::string_view input) {
  const auto file = fuzz::scratch_file("input.gguf", input);
  fuzz::refuses_cleanly([&] {
    const auto f = io::GgufFile::open(file);
    std::uint64_t sum = 0;
    for (const auto& [key, v] : f.metadata()) sum += key.size() + v.elements.size();
    for (const auto& info : f.tensors()) {
      if (!info.type->dtype) continue;
      const Tensor t = f.get(info.name);
      if (std::uint64_t(t.bytes()) != info.bytes) fuzz::finding("tensor view size != its info's byte size");
      const auto* p = static_cast<const unsigned char*>(t.raw());
      for (std::size_t i = 0; i < t.bytes(); ++i) sum += p[i];
    }
    if (sum == 0x5eed) std::fprintf(stderr, "%s", "");  // keeps the reads
  });
  fuzz::refuses_cleanly([&] {
    const auto cv = interop::read_control_vector(file);
    for (const auto& [layer, d] : cv.directions)
      if (layer < 1 || std::int64_t(d.size()) != cv.n_embd) fuzz::finding("control vector with a bad layer or size");
  });
}

}  // namespace flas::fuzz
