// libFuzzer entry point: see readers/gguf.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_gguf(flas::fuzz::as_text(data, size));
  return 0;
}
