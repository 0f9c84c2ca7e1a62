// libFuzzer entry point: see readers/flow_checkpoint.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/flow_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_flow_checkpoint(flas::fuzz::as_text(data, size));
  return 0;
}
