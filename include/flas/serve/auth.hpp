#pragma once
// Who may use the server: an optional API key, checked as `Authorization: Bearer KEY` in constant
// time (the comparison's duration does not depend on where the strings differ), and the loopback
// test behind the start-up warning for a server reachable from elsewhere without a key.
#include <string>
#include <string_view>

namespace flas::serve {

// True when a and b are equal; the time taken depends only on their lengths.
inline bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Whether an Authorization header value carries the key (no key configured: everyone may).
inline bool authorized(std::string_view authorization_header, std::string_view api_key) {
  if (api_key.empty()) return true;
  constexpr std::string_view scheme = "Bearer ";
  if (authorization_header.size() < scheme.size()) return false;
  std::string prefix(authorization_header.substr(0, scheme.size()));
  for (auto& c : prefix) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (prefix != "bearer ") return false;
  return constant_time_equal(authorization_header.substr(scheme.size()), api_key);
}

inline bool is_loopback_host(std::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace flas::serve
