// libFuzzer entry point: see readers/gemma2_config.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/gemma2_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_gemma2_config(flas::fuzz::as_text(data, size));
  return 0;
}
