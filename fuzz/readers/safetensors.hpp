#pragma once
// safetensors: the 8-byte header length, the JSON header (dtypes, shapes, data_offsets, metadata) and
// the data section. An accepted file must hand out views that lie inside it: every byte of every
// tensor is read, so ASan sees any view that escapes the mapping.
#include <string_view>
#include <cstdint>
#include "flas/io/safetensors.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_safetensors(std::string_view input) {
  const std::size_t size = input.size();
  const auto file = fuzz::scratch_file("input.safetensors", input);
  fuzz::refuses_cleanly([&] {
    const auto f = io::SafeTensorsFile::open(file);
    std::uint64_t sum = 0;
    for (const auto& name : f.names()) {
      const Tensor t = f.get(name);
      if (std::uint64_t(t.bytes()) != f.info(name).end - f.info(name).begin) fuzz::finding("view size != data_offsets");
      const auto* p = static_cast<const unsigned char*>(t.raw());
      for (std::size_t i = 0; i < t.bytes(); ++i) sum += p[i];
      (void)f.get(name, f.dtype(name), f.shape(name));
    }
    for (const auto& [key, value] : f.metadata()) sum += key.size() + value.size();
    if (sum == 0x5eed) std::fprintf(stderr, "%s", "");  // keeps the reads
  });
}

}  // namespace flas::fuzz
