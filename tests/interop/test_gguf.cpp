// GGUF reader and writer: a round trip of every value type and tensor dtype, byte layout against the
// format description (hand-assembled file), and one named error per rule the reader enforces.
#include <doctest/doctest.h>

#include "flas/io/gguf_reader.hpp"
#include "flas/io/gguf_writer.hpp"
#include "io/io_test_helpers.hpp"

using namespace flas;
using namespace flas::test_io;
namespace gguf = flas::io::gguf;

namespace {

template <class T>
void put(std::string& s, T x) {
  s.append(reinterpret_cast<const char*>(&x), sizeof(T));
}
void put_str(std::string& s, std::string_view x) {
  put<std::uint64_t>(s, x.size());
  s += x;
}

// A hand-assembled GGUF: one u32 key, one F32 tensor "t" of ne {3, 2} at offset 0, alignment 32.
struct RawGguf {
  std::uint32_t version = 3, alignment = 32;
  std::uint64_t tensors = 1, kvs = 1;
  std::string key = "k", name = "t";
  std::uint32_t value_type = 4, n_dims = 2, ggml_type = 0;
  std::vector<std::uint64_t> ne{3, 2};
  std::uint64_t offset = 0;
  std::size_t data_bytes = 24;
  std::string bytes() const {
    std::string s = "GGUF";
    put(s, version);
    put(s, tensors);
    put(s, kvs);
    put_str(s, key);
    put(s, value_type);
    put<std::uint32_t>(s, 7);
    put_str(s, name);
    put(s, n_dims);
    for (auto d : ne) put(s, d);
    put(s, ggml_type);
    put(s, offset);
    s.resize((s.size() + alignment - 1) / alignment * alignment, '\0');
    for (std::size_t i = 0; i < data_bytes / 4; ++i) put<float>(s, float(i));
    return s;
  }
};

std::string open_error(const TempDir& dir, const std::string& bytes) {
  write_bytes(dir.path() / "x.gguf", bytes);
  return error_message([&] { io::GgufFile::open(dir.path() / "x.gguf"); });
}

}  // namespace

TEST_CASE("gguf: a hand-assembled file reads as the format describes it") {
  TempDir dir;
  write_bytes(dir.path() / "a.gguf", RawGguf{}.bytes());
  const auto f = io::GgufFile::open(dir.path() / "a.gguf");
  CHECK(f.version() == 3);
  CHECK(f.get<std::uint32_t>("k") == 7);
  const Tensor t = f.get("t");
  CHECK(t.shape() == Shape{2, 3});  // ne reversed
  CHECK(t.data<float>()[4] == 4.0f);
}

TEST_CASE("gguf: every value type and tensor dtype survives a write and a read") {
  TempDir dir;
  io::GgufWriter w;
  w.set("u8", std::uint8_t(200)).set("i8", std::int8_t(-5)).set("u16", std::uint16_t(60000)).set("i16", std::int16_t(-300));
  w.set("u32", std::uint32_t(4000000000u)).set("i32", std::int32_t(-7)).set("f32", 1.5f).set("b", true);
  w.set("s", "héllo").set("u64", std::uint64_t(1) << 40).set("i64", std::int64_t(-1) << 40).set("f64", 0.1);
  w.set_array("strings", std::vector<std::string>{"a", "", "▁the"});
  w.set_array("floats", std::vector<float>{1, 2, 3});
  w.set_array("ints", std::vector<std::int32_t>{3, 1, 6});
  Tensor f32 = Tensor::empty({2, 3}, DType::F32), b16 = Tensor::empty({5}, DType::BF16), i32 = Tensor::empty({1, 1, 2}, DType::I32);
  for (int i = 0; i < 6; ++i) f32.data<float>()[i] = float(i) * 0.25f;
  for (int i = 0; i < 5; ++i) b16.data<bf16>()[i] = f32_to_bf16(float(i) - 2);
  i32.data<std::int32_t>()[0] = 9, i32.data<std::int32_t>()[1] = -9;
  w.add_tensor("f32", f32).add_tensor("bf16", b16).add_tensor("i32", i32);
  w.write(dir.path() / "rt.gguf");

  const auto f = io::GgufFile::open(dir.path() / "rt.gguf");
  CHECK(f.get<std::uint8_t>("u8") == 200);
  CHECK(f.get<std::int8_t>("i8") == -5);
  CHECK(f.get<std::uint16_t>("u16") == 60000);
  CHECK(f.get<std::int16_t>("i16") == -300);
  CHECK(f.get<std::uint32_t>("u32") == 4000000000u);
  CHECK(f.get<std::int32_t>("i32") == -7);
  CHECK(f.get<float>("f32") == 1.5f);
  CHECK(f.get<bool>("b"));
  CHECK(f.get<std::string>("s") == "héllo");
  CHECK(f.get<std::uint64_t>("u64") == std::uint64_t(1) << 40);
  CHECK(f.get<std::int64_t>("i64") == std::int64_t(-1) << 40);
  CHECK(f.get<double>("f64") == 0.1);
  CHECK(f.get_array<std::string>("strings") == std::vector<std::string>{"a", "", "▁the"});
  CHECK(f.get_array<float>("floats") == std::vector<float>{1, 2, 3});
  CHECK(f.get_array<std::int32_t>("ints") == std::vector<std::int32_t>{3, 1, 6});
  CHECK(f.metadata().front().first == "u8");  // file order kept
  for (const auto& [name, want] : {std::pair<std::string, Tensor>{"f32", f32}, {"bf16", b16}, {"i32", i32}}) {
    const Tensor got = f.get(name);
    CHECK(got.shape() == want.shape());
    CHECK(got.dtype() == want.dtype());
    CHECK(std::memcmp(got.raw(), want.raw(), want.bytes()) == 0);
    CHECK(f.info(name).offset % 32 == 0);
  }
  CHECK_FLAS_ERROR(f.get<std::int32_t>("u32"), "rt.gguf", "'u32' is u32, expected i32");
  CHECK_FLAS_ERROR(f.get_array<float>("ints"), "'ints' is an array of i32, expected an array of f32");
  CHECK_FLAS_ERROR(f.get("nope"), "no tensor named 'nope'");
  CHECK_FLAS_ERROR(f.value("nope"), "no metadata key 'nope'");
}

TEST_CASE("gguf: the writer packs tensors at the alignment, as llama.cpp's reader requires") {
  TempDir dir;
  io::GgufWriter w(64);
  w.add_tensor("a", Tensor::empty({3}, DType::F32)).add_tensor("b", Tensor::empty({5}, DType::BF16)).add_tensor("c", Tensor::empty({2}, DType::F32));
  w.write(dir.path() / "p.gguf");
  const auto f = io::GgufFile::open(dir.path() / "p.gguf");
  CHECK(f.alignment() == 64);
  CHECK(f.info("a").offset == 0);
  CHECK(f.info("b").offset == 64);
  CHECK(f.info("c").offset == 128);
  CHECK_FLAS_ERROR(io::GgufWriter(48), "alignment 48 is not a power of two");
  CHECK_FLAS_ERROR(io::GgufWriter(1u << 17), "alignment 131072 is above 65536");
  CHECK_FLAS_ERROR(io::GgufWriter().add_tensor(std::string(64, 'n'), Tensor::empty({1}, DType::F32)), "must be 1..63 bytes");
  CHECK_FLAS_ERROR(io::GgufWriter().add_tensor("u", Tensor::empty({1}, DType::U8)), "has no ggml type");
}

TEST_CASE("gguf: every violation is a named error") {
  TempDir dir;
  auto with = [&](auto edit) {
    RawGguf r;
    edit(r);
    return open_error(dir, r.bytes());
  };
  CHECK(has(open_error(dir, "GGUX"), "not a GGUF file"));
  CHECK(has(open_error(dir, "GG"), "truncated at byte 0: the magic needs 4 bytes"));
  CHECK(has(with([](RawGguf& r) { r.version = 1; }), "version 1"));
  CHECK(has(with([](RawGguf& r) { r.version = 0x03000000; }), "big-endian"));
  CHECK(has(with([](RawGguf& r) { r.version = 4; }), "GGUF version 4, expected 2 or 3"));
  CHECK(has(with([](RawGguf& r) { r.kvs = 1u << 30; }), "metadata count 1073741824 cannot fit"));
  CHECK(has(with([](RawGguf& r) { r.tensors = std::uint64_t(1) << 60; }), "tensor count"));
  CHECK(has(with([](RawGguf& r) { r.value_type = 13; }), "key 'k' has value type 13, expected 0..12"));
  CHECK(has(with([](RawGguf& r) { r.key = ""; }), "metadata key #0 is empty"));
  CHECK(has(with([](RawGguf& r) { r.n_dims = 5; r.ne = {1, 1, 1, 1, 1}; }), "tensor 't' has 5 dimensions, expected 1..4"));
  CHECK(has(with([](RawGguf& r) { r.ggml_type = 99; }), "tensor 't' has ggml type 99"));
  CHECK(has(with([](RawGguf& r) { r.ggml_type = 2; r.ne = {3, 2}; }), "not a multiple of its block size 32"));
  CHECK(has(with([](RawGguf& r) { r.offset = 8; }), "data offset 8, not a multiple of the alignment 32"));
  CHECK(has(with([](RawGguf& r) { r.data_bytes = 20; }), "runs past the end of the data section (20 bytes)"));
  CHECK(has(with([](RawGguf& r) { r.ne = {std::uint64_t(1) << 40, std::uint64_t(1) << 40}; }), "element count overflows"));
  CHECK(has(with([](RawGguf& r) { r.name = std::string(64, 'x'); }), "at most 63"));
  // A string length past the end of the file (the key's length field says 2^40 bytes).
  std::string s = RawGguf{}.bytes();
  const std::uint64_t huge = std::uint64_t(1) << 40;
  std::memcpy(s.data() + 24, &huge, 8);
  CHECK(has(open_error(dir, s), "metadata key #0 needs 1099511627776 bytes"));
  // A bool is 0 or 1.
  std::string two = "GGUF";
  put<std::uint32_t>(two, 3), put<std::uint64_t>(two, 0), put<std::uint64_t>(two, 2);
  put_str(two, "k"), put<std::uint32_t>(two, 7), put<std::uint8_t>(two, 2);  // bool stored as 2
  put_str(two, "k"), put<std::uint32_t>(two, 4), put<std::uint32_t>(two, 1);
  CHECK(has(open_error(dir, two), "'k' is a bool stored as 2, expected 0 or 1"));
}

TEST_CASE("gguf: duplicates and overlapping tensors are refused") {
  TempDir dir;
  auto file = [](std::string k2, std::string n2, std::uint64_t off2) {
    std::string s = "GGUF";
    put<std::uint32_t>(s, 3), put<std::uint64_t>(s, 2), put<std::uint64_t>(s, 2);
    put_str(s, "k"), put<std::uint32_t>(s, 4), put<std::uint32_t>(s, 1);
    put_str(s, k2), put<std::uint32_t>(s, 4), put<std::uint32_t>(s, 1);
    for (auto [n, off] : {std::pair<std::string, std::uint64_t>{"a", 0}, {n2, off2}}) {
      put_str(s, n), put<std::uint32_t>(s, 1), put<std::uint64_t>(s, 16), put<std::uint32_t>(s, 0), put<std::uint64_t>(s, off);
    }
    s.resize((s.size() + 31) / 32 * 32 + 128, '\0');
    return s;
  };
  CHECK(has(open_error(dir, file("k2", "b", 64)), "<no exception>"));
  CHECK(has(open_error(dir, file("k", "b", 64)), "metadata key 'k' appears twice"));
  CHECK(has(open_error(dir, file("k2", "a", 64)), "tensor 'a' appears twice"));
  CHECK(has(open_error(dir, file("k2", "b", 32)), "tensors 'a' and 'b' overlap"));
}
