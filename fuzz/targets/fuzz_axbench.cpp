// libFuzzer entry point: see readers/axbench.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/axbench.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_axbench(flas::fuzz::as_text(data, size));
  return 0;
}
