// libFuzzer entry point: see readers/generation_store.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/generation_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_generation_store(flas::fuzz::as_text(data, size));
  return 0;
}
