#pragma once
// The Gemma chat template around arbitrary user text. Whatever the user writes, the prompt must start
// with <bos> <start_of_turn> "user" and end with the opening of the model's turn, so that generation
// starts where the template says (user text containing "<end_of_turn>" may add turns inside, but
// cannot remove the frame).
#include <string_view>
#include <cstdint>
#include <vector>
#include "flas/io/chat_template.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_chat_template(std::string_view input) {
  const std::size_t size = input.size();
  static const io::Tokenizer tok = io::Tokenizer::load(FLAS_FUZZ_MODELS "/tiny-gemma2-chat");
  static const std::vector<std::int64_t> model_turn = tok.encode("<end_of_turn>\n<start_of_turn>model\n");
  static const std::int64_t start_of_turn = tok.piece_to_id(io::gemma_start_of_turn);
  const auto text = input;
  fuzz::refuses_cleanly([&] {
    const auto ids = io::encode_chat(tok, text);
    if (ids.size() < 2 + model_turn.size()) fuzz::finding("chat prompt shorter than its frame");
    // The bundled tokenizer adds SentencePiece's dummy prefix ("▁") before the first piece.
    if (ids[0] != tok.bos_id() || (ids[1] != start_of_turn && ids[2] != start_of_turn))
      fuzz::finding("chat prompt does not open a user turn");
    // The frame's tail is tokenised on its own unless the user text glues onto "<end_of_turn>"; the
    // opening of the model's turn ("<start_of_turn>model\n") must survive either way.
    const std::size_t tail = 3;
    if (!std::equal(model_turn.end() - tail, model_turn.end(), ids.end() - tail))
      fuzz::finding("chat prompt does not end by opening the model's turn");
    (void)tok.decode(ids);
  });
}

}  // namespace flas::fuzz
