// libFuzzer entry point: see readers/tokenizer.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_tokenizer(flas::fuzz::as_text(data, size));
  return 0;
}
