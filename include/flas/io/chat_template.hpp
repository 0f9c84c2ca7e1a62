#pragma once
// The Gemma chat format: one user turn, then the opening of the model's turn, which is where
// generation starts. <start_of_turn> and <end_of_turn> are single vocabulary pieces; SentencePiece
// recognises them inside the text, so the whole prompt is encoded in one call.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flas/io/tokenizer.hpp"

namespace flas::io {

inline constexpr std::string_view gemma_start_of_turn = "<start_of_turn>";
inline constexpr std::string_view gemma_end_of_turn = "<end_of_turn>";

// "<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n"
inline std::string gemma_chat_prompt(std::string_view user_text) {
  std::string prompt;
  prompt.reserve(user_text.size() + 64);
  prompt.append(gemma_start_of_turn).append("user\n").append(user_text);
  prompt.append(gemma_end_of_turn).append("\n").append(gemma_start_of_turn).append("model\n");
  return prompt;
}

// <bos> followed by the ids of the chat prompt: the model's input for one user message.
inline std::vector<std::int64_t> encode_chat(const Tokenizer& tokenizer, std::string_view user_text,
                                             std::int64_t bos) {
  std::vector<std::int64_t> ids{bos};
  const auto body = tokenizer.encode(gemma_chat_prompt(user_text));
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}
inline std::vector<std::int64_t> encode_chat(const Tokenizer& tokenizer, std::string_view user_text) {
  return encode_chat(tokenizer, user_text, tokenizer.bos_id());
}

}  // namespace flas::io
