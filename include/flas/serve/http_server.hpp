#pragma once
// The HTTP API over the engine (cpp-httplib): POST /v1/chat/completions and /v1/completions (OpenAI
// schema, streaming as server-sent events), GET /v1/models, /health, /metrics and the page at `/`.
// Each request's own HTTP thread validates it, queues a Job, then turns the job's tokens into text and
// JSON as they come; the decode loop never waits for a client. Every failure is a JSON error with a
// status: 400 bad field, 401 no key, 404, 413 body too large, 503 queue full, 504 timed out.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <httplib.h>

#include "flas/serve/auth.hpp"
#include "flas/serve/batch_engine.hpp"
#include "flas/serve/connection_probe.hpp"
#include "flas/serve/request.hpp"
#include "flas/serve/text_stream.hpp"
#include "flas/serve/web_page.hpp"

namespace flas::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                        // 0: any free port
  std::string api_key;                    // empty: no key needed
  std::string model_name = "flas";
  std::size_t max_body_bytes = 1 << 20;   // larger bodies: 413
  std::int64_t max_prompt_tokens = 0;     // 0: the context less one token
  std::int64_t default_max_tokens = 256;  // when a request gives none (capped by the context)
  double request_timeout_seconds = 300;   // a request still generating then is stopped (504)
};

template <Backend B>
class ApiServer {
 public:
  ApiServer(BatchEngine<B>& engine, const io::Tokenizer& tok, const gemma2::Config& cfg, SteeringDefaults steering,
            ServerOptions opt, Metrics& metrics)
      : engine_(engine), tok_(tok), cfg_(cfg), steering_(steering), opt_(std::move(opt)), metrics_(metrics) {
    const auto ctx = engine_.options().context;
    if (opt_.max_prompt_tokens <= 0 || opt_.max_prompt_tokens >= ctx) opt_.max_prompt_tokens = ctx - 1;
    // One thread per request that can be in the engine or its queue, plus a few for cheap requests: a
    // request beyond that is answered 503 at once by a spare thread.
    const auto threads = std::size_t(engine_.options().max_batch + engine_.options().max_queue + 8);
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_.set_payload_max_length(opt_.max_body_bytes);
    http_.set_read_timeout(30);
    http_.set_write_timeout(30);
    routes();
  }

  // Binds the socket; returns the port (useful with port 0). Throws when it cannot.
  int bind() {
    if (opt_.port == 0) port_ = http_.bind_to_any_port(opt_.host);
    else port_ = http_.bind_to_port(opt_.host, opt_.port) ? opt_.port : -1;
    FLAS_CHECK(port_ > 0, "serve: cannot listen on ", opt_.host, ":", opt_.port, " (in use, or not an address of this machine)");
    return port_;
  }
  void listen() { http_.listen_after_bind(); }  // blocks until stop()
  void stop() { http_.stop(); }
  int port() const { return port_; }

 private:
  using Request = httplib::Request;
  using Response = httplib::Response;

  static void send_json(Response& res, int status, const nlohmann::json& j) {
    res.status = status;
    res.set_content(dump_json(j), "application/json");
  }

  void routes() {
    http_.set_pre_routing_handler([this](const Request& req, Response& res) {
      if (req.path == "/health" || (req.path == "/" && req.method == "GET") || authorized(req.get_header_value("Authorization"), opt_.api_key))
        return httplib::Server::HandlerResponse::Unhandled;
      send_json(res, 401, ApiError::error_body("a valid API key is required: send the header 'Authorization: Bearer KEY'",
                                               "authentication_error"));
      metrics_.count_request(req.path, 401);
      return httplib::Server::HandlerResponse::Handled;
    });
    http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const Request& req, Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string message = "HTTP " + std::to_string(res.status);
      if (res.status == 404) message = "no route " + req.method + " " + req.path;
      if (res.status == 413) message = "the request body exceeds the limit of " + std::to_string(opt_.max_body_bytes) + " bytes";
      if (res.status == 400) message = "malformed HTTP request";
      send_json(res, res.status, ApiError::error_body(message, "invalid_request_error"));
      metrics_.count_request(res.status == 404 ? "other" : req.path, res.status);
      return httplib::Server::HandlerResponse::Handled;
    }));
    http_.set_exception_handler([this](const Request& req, Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_json(res, 500, ApiError::error_body(what, "server_error"));
      metrics_.count_request(req.path, 500);
    });
    http_.Get("/", [](const Request&, Response& res) { res.set_content(std::string(web_page), "text/html; charset=utf-8"); });
    http_.Get("/health", [this](const Request&, Response& res) {
      send_json(res, 200, {{"status", "ok"}, {"active_rows", metrics_.active_rows.load()}, {"queued", metrics_.queue_depth.load()}});
    });
    http_.Get("/metrics", [this](const Request&, Response& res) {
      res.set_content(metrics_.render(), "text/plain; version=0.0.4");
      metrics_.count_request("/metrics", 200);
    });
    http_.Get("/v1/models", [this](const Request&, Response& res) {
      send_json(res, 200, {{"object", "list"},
                           {"data", {{{"id", opt_.model_name}, {"object", "model"}, {"created", started_}, {"owned_by", "flas"}}}}});
      metrics_.count_request("/v1/models", 200);
    });
    http_.Post("/v1/chat/completions", [this](const Request& req, Response& res) { completion(req, res, Endpoint::chat); });
    http_.Post("/v1/completions", [this](const Request& req, Response& res) { completion(req, res, Endpoint::completion); });
  }

  // Everything a response needs besides the job's tokens.
  struct Reply {
    Endpoint endpoint;
    std::string id, model;
    std::int64_t created, prompt_tokens;
    std::optional<SteeringSpec> steering;
    bool include_usage;
    nlohmann::json usage(std::int64_t completion_tokens) const {
      return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}, {"total_tokens", prompt_tokens + completion_tokens}};
    }
    // A whole response (finish given) or a streaming chunk's choice (text as delta).
    nlohmann::json choice(const std::string& text, const char* finish, bool chunk) const {
      nlohmann::json c{{"index", 0}, {"finish_reason", finish ? nlohmann::json(finish) : nlohmann::json(nullptr)}, {"logprobs", nullptr}};
      if (endpoint == Endpoint::completion) c["text"] = text;
      else if (chunk) c["delta"] = finish && text.empty() ? nlohmann::json::object() : nlohmann::json{{"content", text}};
      else c["message"] = {{"role", "assistant"}, {"content", text}};
      return c;
    }
    nlohmann::json envelope(bool chunk) const {
      nlohmann::json j{{"id", id}, {"created", created}, {"model", model},
                       {"object", endpoint == Endpoint::completion ? "text_completion" : chunk ? "chat.completion.chunk" : "chat.completion"}};
      if (steering) j["steering"] = {{"concept", steering->concept_text}, {"flowtime", steering->flowtime}, {"steps", steering->steps}};
      return j;
    }
  };

  void completion(const Request& req, Response& res, Endpoint endpoint) {
    const std::string name = endpoint == Endpoint::chat ? "/v1/chat/completions" : "/v1/completions";
    try {
      const auto r = parse_completion_request(parse_body(req.body), endpoint, steering_);
      const auto ids = prompt_ids(r, tok_, cfg_.bos_token_id);
      const auto P = std::int64_t(ids.size()), ctx = engine_.options().context;
      const char* prompt_field = endpoint == Endpoint::chat ? "messages" : "prompt";
      if (P > opt_.max_prompt_tokens)
        throw ApiError(400, std::string(prompt_field) + ": the prompt has " + std::to_string(P) + " tokens; the limit is " +
                                std::to_string(opt_.max_prompt_tokens) + " tokens", prompt_field);
      const std::int64_t max_tokens = r.max_tokens.value_or(std::min(opt_.default_max_tokens, ctx - P));
      if (P + max_tokens > ctx)
        throw ApiError(400, "max_tokens: the prompt's " + std::to_string(P) + " tokens plus max_tokens = " + std::to_string(max_tokens) +
                                " exceed the context of " + std::to_string(ctx) + " tokens (at most " + std::to_string(ctx - P) + " here)",
                       "max_tokens");
      auto job = std::make_shared<Job>();
      job->prompt = ids;
      job->max_tokens = max_tokens;
      job->sampling = r.sampling;
      job->steering = r.steering;
      job->deadline = job->arrived + std::chrono::milliseconds(std::int64_t(opt_.request_timeout_seconds * 1000));
      if (!engine_.submit(job)) {
        ++metrics_.rejected_queue_full;
        res.set_header("Retry-After", "1");
        throw ApiError(503, "the server is busy: " + std::to_string(engine_.options().max_queue) +
                                " requests are already waiting (--max-queue); retry later", "", "server_error");
      }
      Reply reply{endpoint, (endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-") + std::to_string(++next_id_), opt_.model_name,
                  std::int64_t(std::time(nullptr)), P, r.steering, r.include_usage};
      if (r.stream) stream(res, job, std::move(reply), r.stop);
      else respond_whole(req, res, job, reply, r.stop);
    } catch (const ApiError& e) {
      send_json(res, e.status(), e.body());
    }
    metrics_.count_request(name, res.status);
  }

  static const char* finish_name(FinishReason f, bool stopped) {
    return stopped || f == FinishReason::stop || f == FinishReason::cancelled ? "stop" : "length";
  }
  ApiError failure(FinishReason f, const std::string& error) const {
    if (f == FinishReason::timeout)
      return ApiError(504, "the request timed out after " + std::to_string(int(opt_.request_timeout_seconds)) + " s (--timeout)", "", "server_error");
    return ApiError(500, error.empty() ? "generation failed" : error, "", "server_error");
  }

  void respond_whole(const Request& req, Response& res, const std::shared_ptr<Job>& job, const Reply& reply,
                     const std::vector<std::string>& stops) {
    TextStream text(tok_, stops);
    std::string out;
    std::size_t used = 0;
    const ConnectionProbe connection(req.remote_addr, req.remote_port, req.local_port);
    for (;;) {
      const auto p = job->wait(used, std::chrono::milliseconds(100));
      if (p.finish == FinishReason::running && connection.closed()) {
        job->request_cancel();  // the client went away: free its row now
        res.status = 499;       // nginx's "client closed request", for the metrics only: nobody reads it
        return;
      }
      while (used < p.tokens.size() && !text.stopped()) out += text.feed(p.tokens[used++]);
      if (text.stopped()) job->request_cancel();
      if (text.stopped() || p.finish != FinishReason::running) {
        if (p.finish == FinishReason::timeout || p.finish == FinishReason::error) throw failure(p.finish, p.error);
        out += text.flush();
        auto j = reply.envelope(false);
        j["choices"] = nlohmann::json::array({reply.choice(out, finish_name(p.finish, text.stopped()), false)});
        j["usage"] = reply.usage(std::int64_t(used));
        send_json(res, 200, j);
        return;
      }
    }
  }

  void stream(Response& res, std::shared_ptr<Job> job, Reply reply, const std::vector<std::string>& stops) {
    struct State {
      std::shared_ptr<Job> job;
      Reply reply;
      TextStream text;
      std::size_t used = 0;
      bool started = false;
    };
    auto st = std::make_shared<State>(State{job, std::move(reply), TextStream(tok_, stops)});
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](std::size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
          auto chunk = [&](const std::string& text, const char* finish) {
            auto j = st->reply.envelope(true);
            j["choices"] = nlohmann::json::array({st->reply.choice(text, finish, true)});
            return send(sse_event(j));
          };
          if (!st->started) {
            st->started = true;
            if (st->reply.endpoint == Endpoint::chat) {
              auto j = st->reply.envelope(true);
              j["choices"] = nlohmann::json::array({{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}});
              if (!send(sse_event(j))) return st->job->request_cancel(), false;
            }
          }
          const auto p = st->job->wait(st->used, std::chrono::milliseconds(100));
          if (!sink.is_writable()) return st->job->request_cancel(), false;  // the client went away
          std::string released;
          while (st->used < p.tokens.size() && !st->text.stopped()) released += st->text.feed(p.tokens[st->used++]);
          if (st->text.stopped()) st->job->request_cancel();
          const bool over = st->text.stopped() || p.finish != FinishReason::running;
          if (over && p.finish != FinishReason::timeout && p.finish != FinishReason::error) released += st->text.flush();
          if (!released.empty() && !chunk(released, nullptr)) return st->job->request_cancel(), false;
          if (!over) return true;
          if (p.finish == FinishReason::timeout || p.finish == FinishReason::error) {
            ApiError e = p.finish == FinishReason::timeout ? ApiError(504, "the request timed out", "", "server_error")
                                                           : ApiError(500, p.error.empty() ? "generation failed" : p.error, "", "server_error");
            send(sse_event(e.body()));
          } else {
            chunk("", finish_name(p.finish, st->text.stopped()));
            if (st->reply.include_usage) {
              auto j = st->reply.envelope(true);
              j["choices"] = nlohmann::json::array();
              j["usage"] = st->reply.usage(std::int64_t(st->used));
              send(sse_event(j));
            }
          }
          send(std::string(sse_done));
          sink.done();
          return true;
        },
        [st](bool) {
          if (!st->job->finished()) st->job->request_cancel();  // the connection ended early
        });
  }

  BatchEngine<B>& engine_;
  const io::Tokenizer& tok_;
  const gemma2::Config& cfg_;
  SteeringDefaults steering_;
  ServerOptions opt_;
  Metrics& metrics_;
  httplib::Server http_;
  int port_ = -1;
  std::int64_t started_ = std::int64_t(std::time(nullptr));
  std::atomic<std::uint64_t> next_id_{0};
};

}  // namespace flas::serve
