// libFuzzer entry point: see readers/serve_request.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/serve_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_serve_request(flas::fuzz::as_text(data, size));
  return 0;
}
