#pragma once
// Shared by the libFuzzer targets. A reader may refuse any input with flas::Error; everything else
// (another exception, a sanitizer report, a crash, a hang, a huge allocation) is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "flas/core/error.hpp"

namespace flas::fuzz {

namespace fs = std::filesystem;

// A private scratch folder for this process, in RAM when /dev/shm exists (files are rewritten on
// every execution). Removed at exit.
inline const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string templ = (base / "flas-fuzz-XXXXXX").string();
    if (!::mkdtemp(templ.data())) {
      std::perror("flas fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] { std::error_code ec; fs::remove_all(scratch_dir(), ec); });
    return fs::path(templ);
  }();
  return dir;
}

inline void write_file(const fs::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "flas fuzz: cannot write %s\n", file.c_str());
    std::abort();
  }
}

// Writes `bytes` to scratch_dir()/name and returns its path.
inline fs::path scratch_file(const std::string& name, std::string_view bytes) {
  const fs::path file = scratch_dir() / name;
  write_file(file, bytes);
  return file;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits `input` at the first NUL: the part before and the part after (empty when there is none).
// Lets one input carry two files (a flow's JSON and its weights, `latest` and state.json).
inline std::pair<std::string_view, std::string_view> split_at_nul(std::string_view input) {
  const auto nul = input.find('\0');
  if (nul == std::string_view::npos) return {input, {}};
  return {input.substr(0, nul), input.substr(nul + 1)};
}

// The message of the last refusal (tests/reliability prints it next to each kept input).
inline std::string& last_refusal() {
  static std::string message;
  return message;
}

// Runs `read`; a flas::Error is the clean refusal every reader owes a bad input.
template <class Read>
void refuses_cleanly(Read&& read) {
  try {
    read();
  } catch (const flas::Error& e) {
    last_refusal() = e.what();
  }
}

// A property of an accepted input that does not hold. Thrown, never a flas::Error: libFuzzer reports
// the uncaught exception as a crash, and the regression test (tests/reliability) as a failure.
class Finding : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};
[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "flas fuzz: %s\n", what);
  throw Finding(what);
}

}  // namespace flas::fuzz
