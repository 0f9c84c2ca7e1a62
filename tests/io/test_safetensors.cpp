// safetensors: round trips for every dtype, the layout the writer produces, and one malformed file per
// validation rule, each checked for the file name and the specific problem in the message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "flas/core/tensor.hpp"
#include "flas/io/safetensors.hpp"
#include "io_test_helpers.hpp"

using flas::DType;
using flas::Shape;
using flas::Tensor;
using flas::io::SafeTensorsFile;
using flas::io::save_safetensors;
using namespace flas::test_io;

namespace {

// A tensor whose bytes are a recognisable pattern (any dtype, including F16).
Tensor patterned(const Shape& shape, DType dtype, unsigned seed) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* bytes = static_cast<unsigned char*>(t.raw());
  for (std::size_t i = 0; i < t.bytes(); ++i) bytes[i] = static_cast<unsigned char>(seed * 31 + i * 7 + (i >> 8));
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.bytes() == b.bytes() &&
         std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

}  // namespace

TEST_CASE("safetensors round trip: every dtype, scalars, empty tensors, metadata") {
  TempDir dir;
  const auto file = dir / "round_trip.safetensors";
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"u8", patterned({3, 5}, DType::U8, 1)},       {"f32", patterned({4, 3}, DType::F32, 2)},
      {"bf16", patterned({7}, DType::BF16, 3)},      {"f16", patterned({2, 3, 1}, DType::F16, 4)},
      {"i64", patterned({5}, DType::I64, 5)},        {"i32", patterned({1, 1, 3}, DType::I32, 6)},
      {"f64", patterned({2, 2}, DType::F64, 7)},     {"scalar", patterned({}, DType::F32, 8)},
      {"empty", patterned({0, 3}, DType::BF16, 9)},
  };
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "round trip"}};
  save_safetensors(file, tensors, meta);
  CHECK_FALSE(fs::exists(file.string() + ".tmp"));

  const auto f = SafeTensorsFile::open(file);
  CHECK(f.path() == file);
  CHECK(f.size() == tensors.size());
  CHECK(f.metadata() == meta);
  CHECK(f.notes().empty());  // no gaps, nothing misaligned
  const auto names = f.names();
  CHECK(std::is_sorted(names.begin(), names.end()));
  for (const auto& item : tensors) {
    const std::string& name = item.first;  // not a structured binding: CAPTURE needs a capturable name
    const Tensor& t = item.second;
    CAPTURE(name);
    REQUIRE(f.contains(name));
    CHECK(f.dtype(name) == t.dtype());
    CHECK(f.shape(name) == t.shape());
    const Tensor back = f.get(name);
    CHECK(same_bytes(back, t));
    CHECK(reinterpret_cast<std::uintptr_t>(back.raw()) % flas::dtype_size(t.dtype()) == 0);
    CHECK(same_bytes(f.get(name, t.dtype(), t.shape()), t));
  }
  // Views are zero-copy and keep the mapping alive after the file object is gone.
  Tensor survivor;
  {
    const auto g = SafeTensorsFile::open(file);
    survivor = g.get("f32");
    CHECK(survivor.shares_storage_with(g.get("i64")));
  }
  CHECK(same_bytes(survivor, tensors[1].second));
  // Writing into a view changes this process's copy only (the mapping is private).
  survivor.data<float>()[0] = 123.0f;
  CHECK(SafeTensorsFile::open(file).get("f32").data<float>()[0] != 123.0f);
}

TEST_CASE("safetensors writer: header padded to 8 bytes, largest elements first, no gaps") {
  TempDir dir;
  const auto file = dir / "layout.safetensors";
  save_safetensors(file, {{"b", patterned({3}, DType::U8, 1)}, {"a", patterned({3}, DType::F64, 2)},
                          {"c", patterned({5}, DType::BF16, 3)}});
  const std::string bytes = read_bytes(file);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);
  CHECK(bytes.size() == 8 + header_len + 3 * 8 + 5 * 2 + 3);
  const auto f = SafeTensorsFile::open(file);
  CHECK(f.info("a").begin == 0);
  CHECK(f.info("c").begin == 24);
  CHECK(f.info("b").begin == 34);
  CHECK(f.metadata().empty());
}

TEST_CASE("safetensors writer: atomic replace keeps existing mappings on the old contents") {
  TempDir dir;
  const auto file = dir / "replace.safetensors";
  const Tensor old_t = patterned({16}, DType::F32, 1), new_t = patterned({16}, DType::F32, 2);
  save_safetensors(file, {{"x", old_t}});
  const auto old_file = SafeTensorsFile::open(file);
  const Tensor old_view = old_file.get("x");
  save_safetensors(file, {{"x", new_t}, {"y", new_t}});
  CHECK(same_bytes(old_view, old_t));
  CHECK(same_bytes(SafeTensorsFile::open(file).get("x"), new_t));
  CHECK(SafeTensorsFile::open(file).contains("y"));
  CHECK_FALSE(fs::exists(file.string() + ".tmp"));
}

TEST_CASE("safetensors writer: refused inputs leave no file behind") {
  TempDir dir;
  const auto file = dir / "refused.safetensors";
  const Tensor t = patterned({2}, DType::F32, 1);
  CHECK_FLAS_ERROR(save_safetensors(file, {{"x", t}, {"x", t}}), "refused.safetensors", "'x'", "twice");
  CHECK_FLAS_ERROR(save_safetensors(file, {{"__metadata__", t}}), "refused.safetensors", "reserved");
  CHECK_FLAS_ERROR(save_safetensors(file, {{"", t}}), "refused.safetensors", "empty name");
  CHECK_FLAS_ERROR(save_safetensors(dir / "no_such_folder" / "x.safetensors", {{"x", t}}), "no_such_folder",
                   "cannot create");
  CHECK_FALSE(fs::exists(file));
  CHECK_FALSE(fs::exists(file.string() + ".tmp"));
}

TEST_CASE("safetensors reader: files that are not there or not files") {
  TempDir dir;
  CHECK_FLAS_ERROR(SafeTensorsFile::open(dir / "absent.safetensors"), "absent.safetensors", "cannot open");
  CHECK_FLAS_ERROR(SafeTensorsFile::open(dir.path()), dir.path().string(), "not a regular file");
}

TEST_CASE("safetensors reader: every malformed header names the file and the problem") {
  TempDir dir;
  const auto file = dir / "bad.safetensors";
  const auto open_raw = [&](std::string_view header, std::string_view data) {
    write_bytes(file, raw_safetensors(header, data));
    return SafeTensorsFile::open(file);
  };
  const std::string data16(16, '\x01');

  SUBCASE("shorter than the length prefix") {
    write_bytes(file, "abc");
    CHECK_FLAS_ERROR(SafeTensorsFile::open(file), "bad.safetensors", "3 bytes", "too short");
    write_bytes(file, "");
    CHECK_FLAS_ERROR(SafeTensorsFile::open(file), "bad.safetensors", "0 bytes", "too short");
  }
  SUBCASE("header length beyond the file") {
    std::string bytes = raw_safetensors("{}", "");
    bytes[0] = 100;
    write_bytes(file, bytes);
    CHECK_FLAS_ERROR(SafeTensorsFile::open(file), "bad.safetensors", "header length 100", "past the end of the file");
  }
  SUBCASE("absurd header length") {
    std::string bytes = raw_safetensors("{}", "");
    std::memset(bytes.data(), 0xff, 8);
    write_bytes(file, bytes);
    CHECK_FLAS_ERROR(SafeTensorsFile::open(file), "bad.safetensors", "absurd");
  }
  SUBCASE("header not JSON, or not an object") {
    CHECK_FLAS_ERROR(open_raw("{\"a\": ", ""), "bad.safetensors", "not valid JSON");
    CHECK_FLAS_ERROR(open_raw("[1, 2]", ""), "bad.safetensors", "JSON object", "array");
    CHECK_FLAS_ERROR(open_raw(R"({"a": 5})", ""), "bad.safetensors", "tensor 'a'", "must be an object");
  }
  SUBCASE("entry missing a field") {
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"shape": [4], "data_offsets": [0, 16]}})", data16), "bad.safetensors",
                     "tensor 'w'", "no \"dtype\"");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "data_offsets": [0, 16]}})", data16), "bad.safetensors",
                     "tensor 'w'", "no \"shape\"");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": [4]}})", data16), "bad.safetensors", "tensor 'w'",
                     "no \"data_offsets\"");
  }
  SUBCASE("fields of the wrong kind") {
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": 3, "shape": [4], "data_offsets": [0, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "\"dtype\" must be a string");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "\"shape\" must be an array");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "shape[0]", "-4");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": [4.5], "data_offsets": [0, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "shape[0]", "4.5");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "U8", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 1]}})", data16),
                     "bad.safetensors", "tensor 'w'", "rank 9");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "two non-negative integers", "[0,8,16]");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [-1, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "two non-negative integers");
  }
  SUBCASE("unknown dtype") {
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}})", data16),
                     "bad.safetensors", "tensor 'w'", "unknown dtype 'F8_E4M3'");
  }
  SUBCASE("offsets reversed, outside the data section, overlapping") {
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": [8, 4]}})", data16),
                     "bad.safetensors", "tensor 'w'", "[8, 4]", "reversed");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})", data16),
                     "bad.safetensors", "tensor 'w'", "[0, 32]", "past the end of the data section (16 bytes)");
    CHECK_FLAS_ERROR(open_raw(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", data16),
                     "bad.safetensors", "'a'", "'b'", "overlap");
  }
  SUBCASE("byte size does not match the shape") {
    CHECK_FLAS_ERROR(
        open_raw(R"({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [4096, 256], "data_offsets": [0, 16]}})",
                 data16),
        "bad.safetensors: tensor 'model.embed_tokens.weight': data_offsets [0, 16] hold 16 bytes, but BF16 [4096, 256] "
        "needs 2097152");
    CHECK_FLAS_ERROR(open_raw(R"({"w": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})",
                              data16),
                     "bad.safetensors", "tensor 'w'", "more than 2^63");
  }
  SUBCASE("metadata must map strings to strings") {
    CHECK_FLAS_ERROR(open_raw(R"({"__metadata__": {"format": 1}})", ""), "bad.safetensors", "__metadata__",
                     "'format'", "must be a string");
    CHECK_FLAS_ERROR(open_raw(R"({"__metadata__": [1]})", ""), "bad.safetensors", "__metadata__", "object");
  }
}

TEST_CASE("safetensors reader: legal oddities load, with a note") {
  TempDir dir;
  const auto file = dir / "odd.safetensors";
  SUBCASE("data section not fully covered") {
    write_bytes(file, raw_safetensors(R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})",
                                      std::string(16, '\x02')));
    const auto f = SafeTensorsFile::open(file);
    REQUIRE(f.notes().size() == 1);
    CHECK(has(f.notes()[0], "12 bytes are unused"));
    CHECK(f.get("w").data<std::uint8_t>()[3] == 2);
  }
  SUBCASE("a misaligned F32 is returned as an aligned copy with the right values") {
    // Pad the header so that the tensor's file offset (8 + header + 1) is not a multiple of 4.
    const std::string header = R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]}})";
    std::string data(1, '\0');
    const float values[2] = {1.5f, -2.25f};
    data.append(reinterpret_cast<const char*>(values), sizeof values);
    std::string padded_header = header;
    while ((8 + padded_header.size() + 1) % 4 == 0) padded_header += ' ';
    write_bytes(file, raw_safetensors(padded_header, data));
    const auto f = SafeTensorsFile::open(file);
    CHECK(std::any_of(f.notes().begin(), f.notes().end(), [](const std::string& n) { return has(n, "aligned copy"); }));
    const Tensor w = f.get("w");
    CHECK(reinterpret_cast<std::uintptr_t>(w.raw()) % 4 == 0);
    CHECK(w.data<float>()[0] == 1.5f);
    CHECK(w.data<float>()[1] == -2.25f);
  }
  SUBCASE("header padded with trailing spaces, an empty file of tensors") {
    write_bytes(file, raw_safetensors("{}      ", ""));
    const auto f = SafeTensorsFile::open(file);
    CHECK(f.size() == 0);
    CHECK(f.names().empty());
  }
}

TEST_CASE("safetensors reader: missing names and wrong expectations") {
  TempDir dir;
  const auto file = dir / "named.safetensors";
  save_safetensors(file, {{"alpha", patterned({2, 3}, DType::F32, 1)}, {"beta", patterned({4}, DType::BF16, 2)}});
  const auto f = SafeTensorsFile::open(file);
  CHECK_FLAS_ERROR(f.get("gamma"), "named.safetensors: no tensor named 'gamma' (the file has 2 tensors, e.g. 'alpha', 'beta')");
  CHECK_FLAS_ERROR(f.shape("gamma"), "named.safetensors", "'gamma'");
  CHECK_FLAS_ERROR(f.get("alpha", DType::BF16, Shape{2, 3}), "named.safetensors", "'alpha'", "is F32 [2, 3]",
                   "expected BF16 [2, 3]");
  CHECK_FLAS_ERROR(f.get("beta", DType::BF16, Shape{2, 2}), "named.safetensors", "'beta'", "is BF16 [4]",
                   "expected BF16 [2, 2]");
  CHECK_FALSE(f.contains("gamma"));
  CHECK(f.contains("alpha"));
}

TEST_CASE("safetensors reader: the shipped fixtures and checkpoints load") {
  const auto fixtures = fs::path(FLAS_PROJECT_FIXTURES);
  for (const auto& entry : fs::directory_iterator(fixtures)) {
    if (entry.path().extension() != ".safetensors") continue;
    CAPTURE(entry.path().string());
    const auto f = SafeTensorsFile::open(entry.path());
    CHECK(f.size() > 0);
    // Real files may hold misaligned tensors (flas_tiny_steps has I64 at 4-byte offsets), never gaps.
    for (const auto& note : f.notes()) CHECK_MESSAGE(has(note, "aligned copy"), note);
    for (const auto& name : f.names()) {
      const Tensor t = f.get(name);
      CHECK(t.bytes() == f.info(name).end - f.info(name).begin);
      CHECK(reinterpret_cast<std::uintptr_t>(t.raw()) % flas::dtype_size(t.dtype()) == 0);
    }
  }
  // A misaligned I64 of a real fixture, read through the aligned copy.
  const auto steps = SafeTensorsFile::open(fs::path(FLAS_PROJECT_FIXTURES) / "flas_tiny_steps.safetensors");
  const Tensor prompt = steps.get("single.prompt_ids", DType::I64, Shape{1, 9});
  CHECK(prompt.data<std::int64_t>()[0] == 328);
  CHECK(prompt.data<std::int64_t>()[8] == 261);
  CHECK(steps.get("single.n_steps").data<std::int64_t>()[0] == 2);
  const auto chat = SafeTensorsFile::open(fs::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat" / "model.safetensors");
  CHECK(chat.metadata().at("format") == "pt");
  CHECK(chat.get("model.embed_tokens.weight", DType::BF16, Shape{4096, 256}).numel() == 4096 * 256);
}
