// libFuzzer entry point: see readers/checkpoint_index.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/checkpoint_index.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_checkpoint_index(flas::fuzz::as_text(data, size));
  return 0;
}
