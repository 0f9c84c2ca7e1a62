// libFuzzer entry point: see readers/train_state.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/train_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_train_state(flas::fuzz::as_text(data, size));
  return 0;
}
