#pragma once
// Reading a judge reply into a rating in [0, 2], exactly as AxBench's LMJudgeEvaluator does
// (axbench/evaluators/lm_judge.py: _get_rating_from_completion / _get_ratings_from_completions), the
// two conventions for what a reply without a readable rating counts as, and the per-sample aggregate
// (harmonic mean of the three ratings, 0 when any is 0).
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/eval/judge/failure.hpp"

namespace flas::eval::judge {

// ---- conventions ---------------------------------------------------------------------------------

// axbench:    the judge samples at temperature 1.0 and an unreadable reply counts as rating 0
//             (AxBench's DEFAULT_RATING), still recorded as a failure.
// flas_paper: the judge is greedy (temperature 0) and an unreadable reply is dropped: the question,
//             and so the sample's aggregate, has no score and is left out of means.
enum class Convention { axbench, flas_paper };

struct ConventionRules {
  double judge_temperature;
  bool unreadable_reply_counts_as_zero;
};

inline ConventionRules rules_of(Convention convention) {
  switch (convention) {
    case Convention::axbench: return {1.0, true};
    case Convention::flas_paper: return {0.0, false};
  }
  fail("unknown judge convention ", int(convention));
}

inline std::string_view to_string(Convention convention) {
  return convention == Convention::axbench ? "axbench" : "flas_paper";
}

inline Convention convention_from_string(std::string_view name) {
  if (name == "axbench") return Convention::axbench;
  if (name == "flas_paper") return Convention::flas_paper;
  fail("judge convention \"", name, "\" is not one of: axbench, flas_paper");
}

// ---- reading one reply ---------------------------------------------------------------------------

namespace detail {

// Python's str.isspace() on ASCII (str.strip() with no argument). Non-ASCII Unicode spaces (U+00A0,
// ...) are not handled; judges do not put them around a rating.
inline bool is_python_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= '\x1c' && c <= '\x1f');
}

inline std::string_view strip_spaces(std::string_view s) {
  while (!s.empty() && is_python_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_python_space(s.back())) s.remove_suffix(1);
  return s;
}

inline std::string_view strip_char(std::string_view s, char c) {
  while (!s.empty() && s.front() == c) s.remove_prefix(1);
  while (!s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  return true;
}

// Python's float(str) on ASCII text: optional sign, then inf / infinity / nan (any case), or a decimal
// with optional fraction and exponent where single underscores may separate digits ("1_0" is 10,
// "1." and ".5" are accepted). Leading/trailing Python whitespace is allowed. nullopt = ValueError.
inline std::optional<double> python_float(std::string_view text) {
  std::string_view s = strip_spaces(text);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  const double sign = negative ? -1.0 : 1.0;
  if (iequals(s, "inf") || iequals(s, "infinity")) return sign * std::numeric_limits<double>::infinity();
  if (iequals(s, "nan")) return std::numeric_limits<double>::quiet_NaN();

  std::string digits;  // s without underscores, checked against the grammar as we go
  std::size_t i = 0;
  // digitpart := digit (["_"] digit)*; returns how many digits it read.
  auto read_digitpart = [&]() -> std::size_t {
    std::size_t count = 0;
    while (i < s.size()) {
      if (std::isdigit(static_cast<unsigned char>(s[i]))) {
        digits += s[i++];
        ++count;
      } else if (s[i] == '_' && count > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        ++i;
      } else {
        break;
      }
    }
    return count;
  };
  const std::size_t integer_digits = read_digitpart();
  std::size_t fraction_digits = 0;
  if (i < s.size() && s[i] == '.') {
    digits += s[i++];
    fraction_digits = read_digitpart();
  }
  if (integer_digits + fraction_digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    digits += s[i++];
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) digits += s[i++];
    if (read_digitpart() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // Python gives inf for overflow and 0 for underflow; both end up out of range or 0 below anyway.
    value = digits.find_first_of("123456789") == std::string::npos ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return sign * value;
}

}  // namespace detail

inline constexpr double min_rating = 0.0;
inline constexpr double max_rating = 2.0;

// What AxBench reads from one reply: a number in [0, 2], or why it read none.
struct ReplyReading {
  std::optional<double> value;
  std::optional<Failure> failure;  // set exactly when value is not
};

// AxBench's steps, in order (lm_judge.py): the completion is stripped (LanguageModel.normalize); if it
// contains no "Rating:" (case-sensitive) there is no rating; otherwise take the text after the LAST
// "Rating:", strip it, keep its first line, strip, delete every '[' and ']', strip trailing '.', then
// strip '"', then "'", then '*', then whitespace, and read what is left with Python's float(). A number
// outside [0, 2] (or NaN) is rejected like an unreadable one.
inline ReplyReading read_rating(std::string_view reply) {
  const std::string_view completion = detail::strip_spaces(reply);
  const std::string_view marker = "Rating:";
  const std::size_t last = completion.rfind(marker);
  if (last == std::string_view::npos)
    return {std::nullopt, Failure{FailureKind::unparsable_reply, "no \"Rating:\" in reply: " + excerpt(completion)}};

  std::string_view text = detail::strip_spaces(completion.substr(last + marker.size()));
  text = detail::strip_spaces(text.substr(0, text.find('\n')));
  std::string unbracketed;
  for (char c : text)
    if (c != '[' && c != ']') unbracketed += c;
  std::string_view cleaned = unbracketed;
  while (!cleaned.empty() && cleaned.back() == '.') cleaned.remove_suffix(1);
  cleaned = detail::strip_char(cleaned, '"');
  cleaned = detail::strip_char(cleaned, '\'');
  cleaned = detail::strip_char(cleaned, '*');
  cleaned = detail::strip_spaces(cleaned);

  const std::optional<double> number = detail::python_float(cleaned);
  if (!number)
    return {std::nullopt, Failure{FailureKind::unparsable_reply,
                                  "text after the last \"Rating:\" is not a number: \"" + excerpt(text) + "\""}};
  if (!(*number >= min_rating && *number <= max_rating))
    return {std::nullopt, Failure{FailureKind::rating_out_of_range,
                                  "rating " + std::string(cleaned) + " is outside [0, 2]"}};
  return {*number, std::nullopt};
}

// ---- one question's outcome ----------------------------------------------------------------------

// The outcome of one judge question. `score` is what enters aggregates and means; nullopt means the
// question is dropped. `failure` says why score is not the judge's own number (under axbench an
// unreadable reply has score 0 AND a failure, so it is counted but never silently).
struct Rating {
  std::optional<double> score;
  std::optional<Failure> failure;
  std::string reply;  // the judge's raw answer; empty when the request itself failed
};

inline Rating rate_reply(std::string_view reply, Convention convention) {
  ReplyReading reading = read_rating(reply);
  Rating rating{reading.value, std::move(reading.failure), std::string(reply)};
  if (!rating.score && rules_of(convention).unreadable_reply_counts_as_zero) rating.score = 0.0;
  return rating;
}

// A request that got no answer (HTTP error, timeout, connection error, malformed response) is dropped
// under both conventions: AxBench has no rule for it (its run aborts), and 0 would be a silent guess.
inline Rating rate_failed_request(Failure failure) {
  FLAS_CHECK(!is_reply_failure(failure.kind), "rate_failed_request: failure kind ", to_string(failure.kind),
             " is about a reply; use rate_reply for judge answers");
  return {std::nullopt, std::move(failure), ""};
}

// ---- aggregate -----------------------------------------------------------------------------------

// AxBench's harmonic mean (lm_judge.py, compute_metrics): 0 if any score is 0, else n / sum(1/s).
inline double harmonic_mean(std::span<const double> scores) {
  FLAS_CHECK(!scores.empty(), "harmonic_mean: expected at least one score");
  double inverse_sum = 0;
  for (double s : scores) {
    FLAS_CHECK(s >= 0, "harmonic_mean: score ", s, " is negative; judge ratings are in [0, 2]");
    if (s == 0) return 0.0;
    inverse_sum += 1.0 / s;
  }
  return double(scores.size()) / inverse_sum;
}

// The per-sample aggregate of the concept, instruction and fluency scores; nullopt when any is dropped.
inline std::optional<double> aggregate_scores(const std::array<std::optional<double>, 3>& scores) {
  std::array<double, 3> present{};
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!scores[i]) return std::nullopt;
    present[i] = *scores[i];
  }
  return harmonic_mean(present);
}

inline void to_json(nlohmann::json& j, const Rating& r) {
  j = {{"score", r.score ? nlohmann::json(*r.score) : nlohmann::json(nullptr)},
       {"failure", r.failure ? nlohmann::json(*r.failure) : nlohmann::json(nullptr)},
       {"reply", r.reply}};
}

inline void from_json(const nlohmann::json& j, Rating& r) {
  const auto& score = j.at("score");
  r.score = score.is_null() ? std::nullopt : std::optional<double>(score.get<double>());
  const auto& failure = j.at("failure");
  r.failure = failure.is_null() ? std::nullopt : std::optional<Failure>(failure.get<Failure>());
  r.reply = j.at("reply").get<std::string>();
}

}  // namespace flas::eval::judge
