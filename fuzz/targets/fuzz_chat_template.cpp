// libFuzzer entry point: see readers/chat_template.hpp for what is fed and what is checked.
#include <cstddef>
#include <cstdint>

#include "readers/chat_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flas::fuzz::feed_chat_template(flas::fuzz::as_text(data, size));
  return 0;
}
