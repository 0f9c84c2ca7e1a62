#pragma once
// The bundled chat model's SentencePiece tokenizer on arbitrary input: the bytes as text (encode,
// decode of the result, streaming decode_piece of every id), and the bytes as int64 token ids
// (decode must refuse ids outside the vocabulary with flas::Error, never pass them to SentencePiece).
#include <string_view>
#include <cstdint>
#include <cstring>
#include <vector>
#include "flas/io/tokenizer.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_tokenizer(std::string_view input) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(input.data());
  const std::size_t size = input.size();
  static const io::Tokenizer tok = io::Tokenizer::load(FLAS_FUZZ_MODELS "/tiny-gemma2-chat");
  const auto text = input;
  fuzz::refuses_cleanly([&] {
    const auto ids = tok.encode(text);
    for (std::int64_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) fuzz::finding("encode produced an id outside the vocabulary");
    const std::string round_trip = tok.decode(ids);
    std::string streamed;
    for (std::int64_t id : ids) streamed += tok.decode_piece(id);
    (void)round_trip;
  });
  std::vector<std::int64_t> ids(size / 8);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 8);
  fuzz::refuses_cleanly([&] { (void)tok.decode(ids); });
  for (std::int64_t id : ids) {
    // Small ids (mod the vocabulary) reach every piece kind: control, unknown, byte-fallback, normal.
    const std::int64_t in_vocab = std::int64_t(std::uint64_t(id) % std::uint64_t(tok.vocab_size()));
    (void)tok.decode_piece(in_vocab);
    (void)tok.id_to_piece(in_vocab);
    fuzz::refuses_cleanly([&] { (void)tok.decode_piece(id); });
  }
  fuzz::refuses_cleanly([&] { (void)tok.piece_to_id(text); });
}

}  // namespace flas::fuzz
