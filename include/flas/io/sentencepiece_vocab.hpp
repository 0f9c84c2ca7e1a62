#pragma once
// A SentencePiece model's vocabulary as stored in tokenizer.model (a protobuf ModelProto): every
// piece with its score and type, and whether the normaliser adds a dummy prefix (a leading space).
// The SentencePiece library answers IsControl/IsUnknown/IsUnused/IsByte but not "user defined", which
// GGUF's token_type needs (llama.cpp matches user-defined pieces such as <start_of_turn> whole), so
// the few fields needed are read here from the protobuf wire format, strictly.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::io {

// SentencePiece's ModelProto.SentencePiece.Type, which GGUF's token_type uses with the same numbers.
enum class PieceType : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct SentencePieceVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<PieceType> types;
  bool add_dummy_prefix = true;  // the protobuf default

  static SentencePieceVocab read(const std::filesystem::path& file);
  static SentencePieceVocab parse(std::string_view bytes, const std::string& source);
};

namespace detail {

// A protobuf wire-format reader over one message; every failure names the source and the offset.
struct ProtoReader {
  std::string_view b;
  std::size_t pos = 0;
  const std::string& source;

  bool done() const { return pos >= b.size(); }
  std::uint64_t varint() {
    std::uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= b.size()) fail(source, ": truncated protobuf varint at byte ", pos);
      const auto c = std::uint8_t(b[pos++]);
      r |= std::uint64_t(c & 0x7f) << shift;
      if (c < 0x80) return r;
    }
    fail(source, ": protobuf varint longer than 10 bytes at byte ", pos);
  }
  std::string_view bytes() {
    const std::uint64_t n = varint();
    if (n > b.size() - pos) fail(source, ": protobuf field of ", n, " bytes at byte ", pos, " runs past the end");
    const auto s = b.substr(pos, std::size_t(n));
    pos += std::size_t(n);
    return s;
  }
  float fixed32_float() {
    if (b.size() - pos < 4) fail(source, ": truncated protobuf fixed32 at byte ", pos);
    float f;
    std::memcpy(&f, b.data() + pos, 4);
    pos += 4;
    return f;
  }
  void skip(std::uint32_t wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: if (b.size() - pos < 8) fail(source, ": truncated protobuf fixed64 at byte ", pos); pos += 8; return;
      case 2: bytes(); return;
      case 5: fixed32_float(); return;
      default: fail(source, ": protobuf wire type ", wire, " at byte ", pos, " is not one SentencePiece uses");
    }
  }
};

}  // namespace detail

inline SentencePieceVocab SentencePieceVocab::parse(std::string_view bytes, const std::string& source) {
  SentencePieceVocab v;
  detail::ProtoReader r{bytes, 0, source};
  while (!r.done()) {
    const std::uint64_t key = r.varint();
    const auto field = key >> 3;
    const auto wire = std::uint32_t(key & 7);
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      detail::ProtoReader p{r.bytes(), 0, source};
      std::string piece;
      float score = 0;
      std::uint64_t type = 1;
      while (!p.done()) {
        const std::uint64_t k = p.varint();
        if (k == (1 << 3 | 2)) piece = std::string(p.bytes());
        else if (k == (2 << 3 | 5)) score = p.fixed32_float();
        else if (k == (3 << 3 | 0)) type = p.varint();
        else p.skip(std::uint32_t(k & 7));
      }
      if (type < 1 || type > 6)
        fail(source, ": piece #", v.pieces.size(), " ('", piece, "') has type ", type, ", expected 1..6");
      v.pieces.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(PieceType(type));
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      detail::ProtoReader n{r.bytes(), 0, source};
      while (!n.done()) {
        const std::uint64_t k = n.varint();
        if (k == (3 << 3 | 0)) v.add_dummy_prefix = n.varint() != 0;
        else n.skip(std::uint32_t(k & 7));
      }
    } else {
      r.skip(wire);
    }
  }
  if (v.pieces.empty()) fail(source, ": a SentencePiece model with no pieces");
  return v;
}

inline SentencePieceVocab SentencePieceVocab::read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file.string(), ": cannot open the SentencePiece model");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(bytes, file.string());
}

}  // namespace flas::io
