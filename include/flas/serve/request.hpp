#pragma once
// A completion request in the OpenAI schema, parsed and validated: POST /v1/chat/completions (messages
// through the Gemma chat template) and POST /v1/completions (a raw prompt after <bos>). Every type or
// range error is a 400 that names the field; fields the server does not use are ignored, as the
// OpenAI API ignores unknown ones, except those whose effect it cannot honour (n > 1, tools, ...).
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/generate/sampler.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/serve/api_error.hpp"
#include "flas/serve/steering_spec.hpp"

namespace flas::serve {

enum class Endpoint { chat, completion };

struct ChatMessage {
  std::string role, content;
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::chat;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completion
  std::optional<std::int64_t> max_tokens;
  SamplingOptions sampling;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false;
  std::optional<SteeringSpec> steering;
};

inline constexpr std::size_t max_stop_sequences = 4;

// Parses the body text; a body that is not JSON is a 400 saying where it broke.
inline nlohmann::json parse_body(const std::string& body) {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number too large (fuzz_serve_request)
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
}

namespace request_detail {
inline const nlohmann::json* find(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() || it->is_null() ? nullptr : &*it;
}
inline double number(const nlohmann::json& v, const std::string& field, double lo, double hi, bool lo_open = false) {
  if (!v.is_number()) bad_field(field, std::string("expected a number, got ") + v.type_name());
  const double x = v.get<double>();
  if (!std::isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
    bad_field(field, "expected a number in " + std::string(lo_open ? "(" : "[") + nlohmann::json(lo).dump() + ", " +
                         nlohmann::json(hi).dump() + "], got " + v.dump());
  return x;
}
inline long long integer(const nlohmann::json& v, const std::string& field, long long lo, long long hi) {
  if (!v.is_number_integer()) bad_field(field, std::string("expected an integer, got ") + v.type_name());
  const long long x = v.is_number_unsigned() && v.get<unsigned long long>() > (unsigned long long)hi ? hi + 1 : v.get<long long>();
  if (x < lo || x > hi) bad_field(field, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
  return x;
}
// A message's content: a string, or the array form [{"type": "text", "text": "..."}].
inline std::string content_text(const nlohmann::json& c, const std::string& field) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad_field(field, std::string("expected a string or an array of text parts, got ") + c.type_name());
  std::string text;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto& part = c[i];
    const std::string where = field + "[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || part["type"] != "text")
      bad_field(where, "only text parts {\"type\": \"text\", \"text\": ...} are supported");
    if (!part.contains("text") || !part["text"].is_string()) bad_field(where + ".text", "expected a string");
    text += part["text"].get<std::string>();
  }
  return text;
}
}  // namespace request_detail

inline CompletionRequest parse_completion_request(const nlohmann::json& body, Endpoint endpoint,
                                                  const SteeringDefaults& steering_defaults) {
  using namespace request_detail;
  if (!body.is_object()) throw ApiError(400, std::string("the request body must be a JSON object, got ") + body.type_name());
  CompletionRequest r;
  r.endpoint = endpoint;
  if (auto* m = find(body, "model"); m && !m->is_string()) bad_field("model", std::string("expected a string, got ") + m->type_name());
  if (endpoint == Endpoint::chat) {
    auto* msgs = find(body, "messages");
    if (!msgs) bad_field("messages", "required: an array of {\"role\", \"content\"} objects");
    if (!msgs->is_array() || msgs->empty()) bad_field("messages", "expected a non-empty array of {\"role\", \"content\"} objects");
    for (std::size_t i = 0; i < msgs->size(); ++i) {
      const auto& m = (*msgs)[i];
      const std::string where = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad_field(where, std::string("expected an object, got ") + m.type_name());
      if (!m.contains("role") || !m["role"].is_string()) bad_field(where + ".role", "expected a string: system, user or assistant");
      const auto role = m["role"].get<std::string>();
      if (role != "system" && role != "developer" && role != "user" && role != "assistant")
        bad_field(where + ".role", "expected system, user or assistant, got \"" + role + "\"");
      if (!m.contains("content") || m["content"].is_null()) bad_field(where + ".content", "required");
      r.messages.push_back({role == "developer" ? "system" : role, content_text(m["content"], where + ".content")});
    }
  } else {
    auto* p = find(body, "prompt");
    if (!p) bad_field("prompt", "required: a string");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) r.prompt = (*p)[0].get<std::string>();
    else if (p->is_string()) r.prompt = p->get<std::string>();
    else bad_field("prompt", "expected a string (or an array of one string)");
  }
  if (auto* v = find(body, "max_completion_tokens")) r.max_tokens = integer(*v, "max_completion_tokens", 1, 1 << 20);
  if (auto* v = find(body, "max_tokens")) r.max_tokens = integer(*v, "max_tokens", 1, 1 << 20);
  if (auto* v = find(body, "temperature")) r.sampling.temperature = float(number(*v, "temperature", 0, 2));
  if (auto* v = find(body, "top_p")) r.sampling.top_p = float(number(*v, "top_p", 0, 1, /*lo_open=*/true));
  if (auto* v = find(body, "seed")) r.sampling.seed = std::uint64_t(integer(*v, "seed", 0, INT64_MAX));
  if (auto* v = find(body, "n"); v && integer(*v, "n", 1, 128) != 1) bad_field("n", "only n = 1 is supported");
  if (auto* v = find(body, "stream")) {
    if (!v->is_boolean()) bad_field("stream", std::string("expected true or false, got ") + v->type_name());
    r.stream = v->get<bool>();
  }
  if (auto* v = find(body, "stream_options")) {
    if (!v->is_object()) bad_field("stream_options", std::string("expected an object, got ") + v->type_name());
    if (auto* u = find(*v, "include_usage")) {
      if (!u->is_boolean()) bad_field("stream_options.include_usage", "expected true or false");
      r.include_usage = u->get<bool>();
    }
  }
  if (auto* v = find(body, "stop")) {
    if (v->is_string()) r.stop.push_back(v->get<std::string>());
    else if (v->is_array() && v->size() <= max_stop_sequences) {
      for (std::size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string()) bad_field("stop[" + std::to_string(i) + "]", "expected a string");
        r.stop.push_back((*v)[i].get<std::string>());
      }
    } else bad_field("stop", "expected a string or an array of at most " + std::to_string(max_stop_sequences) + " strings");
    for (const auto& s : r.stop)
      if (s.empty()) bad_field("stop", "a stop sequence must not be empty");
  }
  if (auto* v = find(body, "logprobs"); v && (!v->is_boolean() || v->get<bool>())) bad_field("logprobs", "log-probabilities are not supported");
  if (find(body, "tools") || find(body, "functions")) bad_field("tools", "tool calls are not supported");
  r.steering = parse_steering(find(body, "steering"), steering_defaults);
  return r;
}

// The Gemma chat prompt of a conversation: user and model turns, a system message folded into the
// first user turn (Gemma has no system role), ending with the opening of the model's turn. One user
// message gives exactly io::gemma_chat_prompt's text.
inline std::string chat_prompt_text(const std::vector<ChatMessage>& messages) {
  std::string system, text;
  bool first_user = true;
  for (const auto& m : messages) {
    if (m.role == "system") {
      system += (system.empty() ? "" : "\n\n") + m.content;
      continue;
    }
    const bool user = m.role == "user";
    std::string content = m.content;
    if (user && first_user && !system.empty()) content = system + "\n\n" + content;
    if (user) first_user = false;
    text.append(io::gemma_start_of_turn).append(user ? "user\n" : "model\n").append(content);
    text.append(io::gemma_end_of_turn).append("\n");
  }
  if (first_user && !system.empty())  // only a system message: it becomes the user turn
    text.append(io::gemma_start_of_turn).append("user\n").append(system).append(io::gemma_end_of_turn).append("\n");
  return text.append(io::gemma_start_of_turn).append("model\n");
}

// <bos> + the prompt's ids: the chat template for chat requests, the raw text for completions.
inline std::vector<std::int64_t> prompt_ids(const CompletionRequest& r, const io::Tokenizer& tok, std::int64_t bos) {
  std::vector<std::int64_t> ids{bos};
  const auto body = tok.encode(r.endpoint == Endpoint::chat ? chat_prompt_text(r.messages) : r.prompt);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

}  // namespace flas::serve
