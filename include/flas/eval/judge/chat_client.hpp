#pragma once
// An OpenAI-compatible chat-completions client for the judge: POST {base_url}/chat/completions with
// {model, messages, temperature[, max_tokens]} and "Authorization: Bearer <key>". It retries 429, 5xx,
// timeouts and connection errors with capped, jittered exponential back-off (a server's Retry-After
// wins), never retries other 4xx, answers repeated requests from an on-disk cache, and turns every
// problem into a recorded Failure: it never throws for what a server does. Needs flas::http.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/eval/judge/failure.hpp"
#include "flas/eval/judge/response_cache.hpp"
#include "flas/eval/judge/workers.hpp"

namespace flas::eval::judge {

struct ChatMessage {
  std::string role;  // "user" (AxBench sends the filled template as the single user message)
  std::string content;
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  double temperature = 1.0;
  int max_tokens = 0;             // 0: not sent, so the server's default applies (AxBench sends none)
  std::int64_t sample_index = 0;  // only distinguishes cache entries of otherwise equal requests
};

struct RetryPolicy {
  int max_retries = 5;                     // attempts = 1 + max_retries
  double initial_backoff_seconds = 1.0;    // wait before the first retry, doubled each time ...
  double backoff_multiplier = 2.0;
  double max_backoff_seconds = 60.0;       // ... up to this
  double jitter_fraction = 0.5;            // each wait is drawn uniformly from [(1 - j) * w, w]
  double max_retry_after_seconds = 120.0;  // a server's Retry-After is honoured up to this
  bool retry_timeouts = true;
};

struct ChatClientConfig {
  std::string base_url = "https://api.openai.com/v1";
  std::string model = "gpt-4o-mini";  // AxBench's judge
  std::string api_key;                // empty: no Authorization header (local servers)
  double timeout_seconds = 60.0;      // connect, and each read / write (AxBench: 60 s)
  RetryPolicy retry;
  std::filesystem::path cache_path;   // JSON-lines answer cache; empty: in memory only

  // FLAS_JUDGE_BASE_URL and FLAS_JUDGE_MODEL override the defaults above; the key comes from
  // FLAS_JUDGE_API_KEY, else OPENAI_API_KEY, and is required unless require_api_key is false.
  static ChatClientConfig from_environment(bool require_api_key = true) {
    ChatClientConfig config;
    if (const char* v = std::getenv("FLAS_JUDGE_BASE_URL"); v && *v) config.base_url = v;
    if (const char* v = std::getenv("FLAS_JUDGE_MODEL"); v && *v) config.model = v;
    if (const char* v = std::getenv("FLAS_JUDGE_API_KEY"); v && *v) config.api_key = v;
    else if (const char* o = std::getenv("OPENAI_API_KEY"); o && *o) config.api_key = o;
    FLAS_CHECK(!require_api_key || !config.api_key.empty(), "judge client: no API key; set FLAS_JUDGE_API_KEY ",
               "(or OPENAI_API_KEY) for ", config.base_url);
    return config;
  }
};

struct ChatResult {
  std::optional<std::string> content;  // the judge's answer (choices[0].message.content)
  std::optional<Failure> failure;      // set exactly when content is not
  int attempts = 0;                    // HTTP requests made; 0 when answered from the cache
  bool from_cache = false;
};

// scheme://host[:port][/path] split for httplib, which wants "scheme://host:port" and a path apart.
struct BaseUrl {
  std::string scheme_host_port;
  std::string path;  // without a trailing '/', e.g. "/v1"

  static BaseUrl parse(const std::string& url) {
    const std::size_t scheme_end = url.find("://");
    FLAS_CHECK(scheme_end != std::string::npos, "judge base URL \"", url,
               "\": expected http://host[:port][/path] or https://...");
    const std::string scheme = url.substr(0, scheme_end);
    FLAS_CHECK(scheme == "http" || scheme == "https", "judge base URL \"", url, "\": scheme \"", scheme,
               "\" is not http or https");
    const std::size_t host_start = scheme_end + 3;
    const std::size_t path_start = url.find('/', host_start);
    BaseUrl out;
    out.scheme_host_port = url.substr(0, path_start);
    FLAS_CHECK(out.scheme_host_port.size() > host_start, "judge base URL \"", url, "\": has no host");
    out.path = path_start == std::string::npos ? "" : url.substr(path_start);
    while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
    return out;
  }
};

namespace detail {

// Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date) or OpenAI's retry-after-ms.
inline std::optional<double> retry_after_seconds(const httplib::Response& response) {
  if (response.has_header("retry-after-ms")) {
    char* end = nullptr;
    const std::string value = response.get_header_value("retry-after-ms");
    const double ms = std::strtod(value.c_str(), &end);
    if (end != value.c_str() && ms >= 0) return ms / 1000.0;
  }
  if (!response.has_header("Retry-After")) return std::nullopt;
  const std::string value = response.get_header_value("Retry-After");
  char* end = nullptr;
  const double seconds = std::strtod(value.c_str(), &end);
  if (end != value.c_str() && *end == '\0' && seconds >= 0) return seconds;
  std::tm date{};
  std::istringstream in(value);
  in.imbue(std::locale::classic());
  in >> std::get_time(&date, "%a, %d %b %Y %H:%M:%S");  // IMF-fixdate, always GMT
  if (in.fail()) return std::nullopt;
  const double wait = std::difftime(timegm(&date), std::time(nullptr));
  return wait > 0 ? wait : 0.0;
}

inline double jittered_backoff(const RetryPolicy& policy, int retry_number) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double wait = std::min(policy.max_backoff_seconds,
                               policy.initial_backoff_seconds * std::pow(policy.backoff_multiplier, retry_number));
  std::uniform_real_distribution<double> factor(1.0 - policy.jitter_fraction, 1.0);
  return wait * factor(rng);
}

}  // namespace detail

class ChatClient {
 public:
  explicit ChatClient(ChatClientConfig config)
      : config_(std::move(config)), url_(BaseUrl::parse(config_.base_url)), cache_(config_.cache_path) {
    FLAS_CHECK(!config_.model.empty(), "judge client: model name is empty (set FLAS_JUDGE_MODEL)");
    FLAS_CHECK(config_.timeout_seconds > 0, "judge client: timeout_seconds must be > 0, got ", config_.timeout_seconds);
    FLAS_CHECK(config_.retry.max_retries >= 0, "judge client: max_retries must be >= 0");
  }

  const ChatClientConfig& config() const { return config_; }
  std::size_t http_attempts() const { return http_attempts_.load(); }
  std::size_t cached_answers() const { return cache_.size(); }

  nlohmann::json request_body(const ChatRequest& request) const {
    nlohmann::json messages = nlohmann::json::array();
    for (const ChatMessage& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
    nlohmann::json body = {{"model", config_.model}, {"messages", messages}, {"temperature", request.temperature}};
    if (request.max_tokens > 0) body["max_tokens"] = request.max_tokens;
    return body;
  }

  // Everything that can change the answer: the body sent, plus the sample index.
  std::string cache_key(const ChatRequest& request) const {
    nlohmann::json keyed = request_body(request);
    keyed["max_tokens"] = request.max_tokens;
    keyed["sample_index"] = request.sample_index;
    return fnv1a_128_hex(keyed.dump());
  }

  // One request, from the cache or the server. Safe to call from several threads.
  ChatResult complete(const ChatRequest& request) {
    const std::string key = cache_key(request);
    if (std::optional<std::string> cached = cache_.find(key)) return {std::move(cached), std::nullopt, 0, true};

    const std::string endpoint = url_.path + "/chat/completions";
    const std::string body = request_body(request).dump();
    httplib::Headers headers;
    if (!config_.api_key.empty()) headers.emplace("Authorization", "Bearer " + config_.api_key);
    const RetryPolicy& policy = config_.retry;

    ChatResult result;
    for (int attempt = 0;; ++attempt) {
      const Attempt outcome = post_once(endpoint, headers, body);
      ++result.attempts;
      if (outcome.content) {
        cache_.store(key, *outcome.content);
        result.content = outcome.content;
        return result;
      }
      if (!outcome.retryable || attempt >= policy.max_retries) {
        result.failure = outcome.failure;
        result.failure->detail += " (after " + std::to_string(result.attempts) + " attempt" +
                                  (result.attempts == 1 ? "" : "s") + ")";
        return result;
      }
      const double wait = outcome.retry_after ? std::min(*outcome.retry_after, policy.max_retry_after_seconds)
                                              : detail::jittered_backoff(policy, attempt);
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
  }

  // Many requests on `workers` threads; results in request order; progress after each request.
  std::vector<ChatResult> complete_all(const std::vector<ChatRequest>& requests, std::size_t workers,
                                       const ProgressCallback& progress = {}) {
    std::vector<ChatResult> results(requests.size());
    run_with_workers(requests.size(), workers, [&](std::size_t i) { results[i] = complete(requests[i]); }, progress);
    return results;
  }

 private:
  struct Attempt {
    std::optional<std::string> content;
    Failure failure{FailureKind::connection_error, ""};
    bool retryable = false;
    std::optional<double> retry_after;
  };

  Attempt post_once(const std::string& endpoint, const httplib::Headers& headers, const std::string& body) {
    const std::string where = "POST " + url_.scheme_host_port + endpoint;
    httplib::Client client(url_.scheme_host_port);
    const auto whole = std::chrono::duration<double>(config_.timeout_seconds);
    const auto sec = std::chrono::floor<std::chrono::seconds>(whole);
    const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(whole - sec);
    client.set_connection_timeout(sec.count(), usec.count());
    client.set_read_timeout(sec.count(), usec.count());
    client.set_write_timeout(sec.count(), usec.count());

    const auto start = std::chrono::steady_clock::now();
    httplib::Result response = client.Post(endpoint, headers, body, "application/json");
    ++http_attempts_;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    Attempt out;
    if (!response) {
      const httplib::Error error = response.error();
      // httplib 0.11 reports a read timeout as a plain read error; the elapsed time tells them apart.
      const bool timed_out = error == httplib::Error::ConnectionTimeout ||
                             (error == httplib::Error::Read && elapsed >= 0.9 * config_.timeout_seconds);
      const bool certificate_problem =
          error == httplib::Error::SSLServerVerification || error == httplib::Error::SSLLoadingCerts;
      if (timed_out) {
        out.failure = {FailureKind::timeout, where + ": no answer within " + std::to_string(config_.timeout_seconds) + " s"};
        out.retryable = config_.retry.retry_timeouts;
      } else {
        out.failure = {FailureKind::connection_error, where + ": " + httplib::to_string(error)};
        out.retryable = !certificate_problem;  // a certificate does not fix itself between retries
      }
      return out;
    }

    const int status = response->status;
    if (status < 200 || status >= 300) {
      out.failure = {FailureKind::http_error,
                     where + ": HTTP " + std::to_string(status) + ", body: " + excerpt(response->body)};
      out.retryable = status == 429 || status >= 500;
      if (out.retryable) out.retry_after = detail::retry_after_seconds(*response);
      return out;
    }

    // 2xx: it must be chat-completions JSON with a string at choices[0].message.content.
    const nlohmann::json parsed = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    const char* problem = nullptr;
    if (parsed.is_discarded()) problem = "not JSON";
    else if (!parsed.is_object() || !parsed.contains("choices") || !parsed["choices"].is_array() ||
             parsed["choices"].empty())
      problem = "no \"choices\"";
    else if (!parsed["choices"][0].is_object() || !parsed["choices"][0].contains("message") ||
             !parsed["choices"][0]["message"].is_object() || !parsed["choices"][0]["message"].contains("content") ||
             !parsed["choices"][0]["message"]["content"].is_string())
      problem = "no string choices[0].message.content";
    if (problem) {
      out.failure = {FailureKind::malformed_response, where + ": HTTP " + std::to_string(status) + " answer has " +
                                                          problem + ", body: " + excerpt(response->body)};
      return out;
    }
    out.content = parsed["choices"][0]["message"]["content"].get<std::string>();
    return out;
  }

  ChatClientConfig config_;
  BaseUrl url_;
  ResponseCache cache_;
  std::atomic<std::size_t> http_attempts_{0};
};

}  // namespace flas::eval::judge
