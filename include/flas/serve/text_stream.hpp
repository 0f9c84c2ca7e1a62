#pragma once
// Generated tokens to text, released as it becomes final: a stop sequence ends the text before it, so
// text that might be the start of one is held back, and so is an unfinished UTF-8 character (a
// byte-fallback token gives one byte of it at a time). Server-sent events frame what is released.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/io/tokenizer.hpp"

namespace flas::serve {

// Length of the longest prefix of s[from, end) that does not end inside a UTF-8 character.
inline std::size_t utf8_complete_end(const std::string& s, std::size_t from, std::size_t end) {
  std::size_t i = end;
  for (int back = 0; back < 4 && i > from; ++back) {
    const auto c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {  // the lead byte of the last character (or ASCII)
      const std::size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      return end - (i - 1) >= need ? end : i - 1;
    }
    --i;
  }
  return end;
}

class TextStream {
 public:
  TextStream(const io::Tokenizer& tok, std::vector<std::string> stops) : tok_(tok), stops_(std::move(stops)) {}

  // Adds a token; returns the text that became final.
  std::string feed(std::int64_t token) {
    if (stopped_) return {};
    text_ += tok_.decode_piece(token);
    std::size_t end = text_.size();
    for (const auto& s : stops_) {
      const std::size_t from = released_ >= s.size() ? released_ - s.size() + 1 : 0;
      if (auto at = text_.find(s, from); at != std::string::npos && at < end) {
        end = at;
        stopped_ = true;
      }
    }
    if (stopped_) {
      text_.resize(end);
      return release(end);
    }
    for (const auto& s : stops_)  // hold back a tail that could begin a stop sequence
      for (std::size_t k = std::min(s.size() - 1, text_.size() - released_); k > 0; --k)
        if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
          end = std::min(end, text_.size() - k);
          break;
        }
    return release(utf8_complete_end(text_, released_, end));
  }
  // At the end: whatever was held back.
  std::string flush() { return release(text_.size()); }

  bool stopped() const { return stopped_; }  // a stop sequence was generated
  const std::string& text() const { return text_; }

 private:
  std::string release(std::size_t end) {
    if (end <= released_) return {};
    std::string out = text_.substr(released_, end - released_);
    released_ = end;
    return out;
  }

  const io::Tokenizer& tok_;
  std::vector<std::string> stops_;
  std::string text_;
  std::size_t released_ = 0;
  bool stopped_ = false;
};

// JSON text that survives invalid UTF-8 (replaced by U+FFFD rather than throwing).
inline std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
// One server-sent event carrying a JSON payload, and the OpenAI end-of-stream marker.
inline std::string sse_event(const nlohmann::json& payload) { return "data: " + dump_json(payload) + "\n\n"; }
inline constexpr std::string_view sse_done = "data: [DONE]\n\n";

}  // namespace flas::serve
