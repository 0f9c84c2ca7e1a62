#pragma once
// `flas serve`'s request bodies, as its HTTP handlers read them: the body text parsed as JSON, then
// validated as a chat and as a text completion request (with and without a flow to steer with), and
// an accepted request turned into the bundled model's prompt ids. The clean refusal here is the
// server's ApiError (a 400 naming the field); an accepted request must satisfy what the engine relies on.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "flas/io/tokenizer.hpp"
#include "flas/serve/request.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void check_accepted_request(const serve::CompletionRequest& r, const io::Tokenizer& tok) {
  if (r.endpoint == serve::Endpoint::chat && r.messages.empty()) finding("a chat request without messages was accepted");
  if (r.stop.size() > serve::max_stop_sequences) finding("more stop sequences than the limit were accepted");
  for (const auto& s : r.stop)
    if (s.empty()) finding("an empty stop sequence was accepted");
  if (r.max_tokens && *r.max_tokens < 1) finding("max_tokens < 1 was accepted");
  if (!(r.sampling.temperature >= 0 && r.sampling.temperature <= 2)) finding("temperature out of [0, 2] was accepted");
  if (!(r.sampling.top_p > 0 && r.sampling.top_p <= 1)) finding("top_p out of (0, 1] was accepted");
  if (r.steering) {
    const auto& s = *r.steering;
    if (!std::isfinite(s.flowtime) || s.flowtime < 0 || s.flowtime > serve::max_flowtime) finding("flowtime out of range was accepted");
    if (s.steps < 1 || s.steps > serve::max_flow_steps) finding("steps out of range were accepted");
    if (s.concept_text.empty() || s.concept_text.size() > serve::max_concept_chars) finding("a bad concept was accepted");
  }
  const auto ids = serve::prompt_ids(r, tok, 2);
  for (std::int64_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) finding("a prompt id outside the vocabulary");
}

inline void feed_serve_request(std::string_view input) {
  static const io::Tokenizer tok = io::Tokenizer::load(FLAS_FUZZ_MODELS "/tiny-gemma2-chat");
  nlohmann::json body;
  try {
    body = serve::parse_body(std::string(input));
  } catch (const serve::ApiError& e) {
    if (e.status() != 400) finding("a body that is not JSON was not a 400");
    last_refusal() = e.what();
    return;
  }
  const serve::SteeringDefaults with_flow{true, 4.0f, 3}, without_flow{};
  for (auto endpoint : {serve::Endpoint::chat, serve::Endpoint::completion})
    for (const auto* defaults : {&with_flow, &without_flow}) {
      try {
        check_accepted_request(serve::parse_completion_request(body, endpoint, *defaults), tok);
      } catch (const serve::ApiError& e) {
        if (e.status() != 400) finding("a bad request was not a 400");
        last_refusal() = e.what();
      }
    }
}

}  // namespace flas::fuzz
