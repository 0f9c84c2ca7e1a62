#pragma once
// Errors: every failure the library reports is a flas::Error whose message names the file, tensor or
// field involved and what was expected. Never abort, never silently continue.
#include <sstream>
#include <stdexcept>
#include <string>

namespace flas {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
}  // namespace detail

// Throws flas::Error with the streamed parts concatenated.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(detail::concat(parts...));
}

}  // namespace flas

// FLAS_CHECK(cond, "tensor ", name, " expected ...") — a cheap check that stays on in release builds.
#define FLAS_CHECK(cond, ...)                  \
  do {                                         \
    if (!(cond)) ::flas::fail(__VA_ARGS__);    \
  } while (0)
