// The reader against damaged files: truncated copies of a real fixture at every short length and at
// random longer ones must be refused with flas::Error, and random corruption of the header must either
// load (then every view must lie inside the file) or be refused — never crash, never another exception.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include "flas/io/safetensors.hpp"
#include "io_test_helpers.hpp"

using flas::io::SafeTensorsFile;
using namespace flas::test_io;

namespace {

const fs::path& fixture_file() {
  static const fs::path file = fs::path(FLAS_PROJECT_FIXTURES) / "gemma2_tiny_fixtures.safetensors";
  return file;
}

std::uint64_t header_length(const std::string& bytes) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return n;
}

// Opens `bytes` as a file; true when it loaded (and every tensor was read end to end).
bool loads(const fs::path& file, const std::string& bytes, std::string& error) {
  write_bytes(file, bytes);
  error = error_message([&] {
    const auto f = SafeTensorsFile::open(file);
    std::uint64_t sum = 0;
    for (const auto& name : f.names()) {
      const auto t = f.get(name);
      const auto* p = static_cast<const unsigned char*>(t.raw());
      for (std::size_t i = 0; i < t.bytes(); ++i) sum += p[i];  // touches every byte of every view
    }
    (void)sum;
  });
  return error == "<no exception>";
}

}  // namespace

TEST_CASE("safetensors fuzz: every truncation of a real file is refused") {
  const std::string full = read_bytes(fixture_file());
  const std::uint64_t header = header_length(full);
  REQUIRE(full.size() > 8 + header + 16);
  TempDir dir;
  const auto file = dir / "truncated.safetensors";
  std::string error;
  REQUIRE(loads(file, full, error));

  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 8 + header + 16; ++n) lengths.push_back(n);
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<std::size_t> longer(8 + header + 17, full.size() - 1);
  for (int i = 0; i < 48; ++i) lengths.push_back(longer(rng));
  lengths.push_back(full.size() - 1);

  int refused = 0;
  for (std::size_t n : lengths) {
    CAPTURE(n);
    const bool ok = loads(file, full.substr(0, n), error);
    CHECK_FALSE(ok);
    CHECK_MESSAGE(has(error, "truncated.safetensors"), error);
    CHECK_MESSAGE(error.rfind("<", 0) != 0, error);  // a flas::Error, not something else
    refused += ok ? 0 : 1;
  }
  CHECK(refused == int(lengths.size()));
}

TEST_CASE("safetensors fuzz: random header corruption loads or throws flas::Error") {
  const std::string full = read_bytes(fixture_file());
  const std::uint64_t header = header_length(full);
  TempDir dir;
  const auto file = dir / "corrupt.safetensors";
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::size_t> where(0, 8 + header - 1), where_json(8, 8 + header - 1);
  std::uniform_int_distribution<int> byte(0, 255), flips(1, 4);
  // Printable replacements keep the JSON parseable more often, so the later checks get exercised too.
  const std::string printable = "0123456789[]{},:\"-.eE FBIU";
  std::uniform_int_distribution<std::size_t> pick(0, printable.size() - 1);

  int loaded = 0, refused = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string bytes = full;
    const int n = flips(rng);
    for (int k = 0; k < n; ++k) {
      if (iter % 4 == 0) bytes[where(rng)] = char(byte(rng));          // anywhere, prefix included
      else if (iter % 4 == 1) bytes[where_json(rng)] = char(byte(rng));
      else bytes[where_json(rng)] = printable[pick(rng)];
    }
    std::string error;
    CAPTURE(iter);
    if (loads(file, bytes, error)) {
      ++loaded;
    } else {
      ++refused;
      CHECK_MESSAGE(error.rfind("<", 0) != 0, error);
      CHECK_MESSAGE(has(error, "corrupt.safetensors"), error);
    }
  }
  MESSAGE("header corruption: " << loaded << " loaded, " << refused << " refused");
  CHECK(refused > 0);
}
