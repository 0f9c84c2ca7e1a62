#pragma once
// Why a judge question has no rating of its own: the reply could not be read, or no reply came back.
// Every such case is recorded with a reason, so no missing rating ever passes for a silent zero.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::eval::judge {

enum class FailureKind {
  unparsable_reply,     // the judge answered, but not with a "Rating: <number>" AxBench can read
  rating_out_of_range,  // the judge answered with a number outside [0, 2] (or NaN)
  http_error,           // a non-2xx status: a 4xx that is not retried, or 429/5xx after all retries
  timeout,              // no answer within the request timeout, after all retries
  connection_error,     // could not connect / the connection broke, after all retries
  malformed_response,   // 2xx, but not chat-completions JSON (not JSON, no choices, no content)
};

inline std::string_view to_string(FailureKind kind) {
  switch (kind) {
    case FailureKind::unparsable_reply: return "unparsable_reply";
    case FailureKind::rating_out_of_range: return "rating_out_of_range";
    case FailureKind::http_error: return "http_error";
    case FailureKind::timeout: return "timeout";
    case FailureKind::connection_error: return "connection_error";
    case FailureKind::malformed_response: return "malformed_response";
  }
  return "unknown";
}

inline FailureKind failure_kind_from_string(std::string_view name) {
  for (FailureKind kind : {FailureKind::unparsable_reply, FailureKind::rating_out_of_range, FailureKind::http_error,
                           FailureKind::timeout, FailureKind::connection_error, FailureKind::malformed_response})
    if (to_string(kind) == name) return kind;
  fail("judge failure kind \"", name, "\" is not one of unparsable_reply, rating_out_of_range, http_error, ",
       "timeout, connection_error, malformed_response");
}

// The judge answered (its reply is about the rating) versus the request itself failed.
inline bool is_reply_failure(FailureKind kind) {
  return kind == FailureKind::unparsable_reply || kind == FailureKind::rating_out_of_range;
}

struct Failure {
  FailureKind kind;
  std::string detail;  // human-readable: the status and body excerpt, the unreadable text, ...
};

inline void to_json(nlohmann::json& j, const Failure& f) { j = {{"kind", to_string(f.kind)}, {"detail", f.detail}}; }

inline void from_json(const nlohmann::json& j, Failure& f) {
  f.kind = failure_kind_from_string(j.at("kind").get<std::string>());
  f.detail = j.at("detail").get<std::string>();
}

// A short, single-line excerpt of some text for error messages (bodies can be megabytes of HTML).
inline std::string excerpt(std::string_view text, std::size_t max_chars = 200) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += (c == '\n' || c == '\r') ? ' ' : c;
  if (text.size() > max_chars) out += "...";
  return out;
}

}  // namespace flas::eval::judge
