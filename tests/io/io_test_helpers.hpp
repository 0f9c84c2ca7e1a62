#pragma once
// Shared by the I/O tests: a self-deleting temporary folder, raw file writing, hand-made safetensors
// files (to build malformed ones), and a check that an expression throws flas::Error whose message
// holds given substrings.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "flas/core/error.hpp"

namespace flas::test_io {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            flas::detail::concat("flas_test_io_", ::getpid(), "_", counter++, "_", rd());
    fs::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(out.good());
}

inline std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A safetensors file from a literal header and data section.
inline std::string raw_safetensors(std::string_view header, std::string_view data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out.append(header);
  out.append(data);
  return out;
}

// What `f` threw: the flas::Error message, or a marker that no substring check will accept.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const flas::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a flas::Error: ") + e.what() + ">";
  }
  return "<no exception>";
}

inline bool has(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace flas::test_io

// CHECK_FLAS_ERROR(expr, "part", ...): expr throws flas::Error and its message contains every part.
#define CHECK_FLAS_ERROR(expr, ...)                                                             \
  do {                                                                                          \
    const std::string flas_message_ = ::flas::test_io::error_message([&] { (void)(expr); });    \
    CHECK_MESSAGE(flas_message_.rfind("<", 0) != 0, "expected a flas::Error, got ", flas_message_); \
    for (const std::string& flas_part_ : std::vector<std::string>{__VA_ARGS__})                 \
      CHECK_MESSAGE(::flas::test_io::has(flas_message_, flas_part_),                            \
                    "expected '" << flas_part_ << "' in: " << flas_message_);                   \
  } while (0)
