// flas serve: an OpenAI-compatible HTTP server with per-request steering in one continuous batch
// (the engine and routes live in include/flas/serve/; this file reads flags and wires them up).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "backend_choice.hpp"
#include "commands.hpp"
#include "flas/serve/http_server.hpp"

namespace flas::cli {

namespace {
struct ServeArgs {
  std::string model_dir, flow;
  serve::ServerOptions server;
  serve::EngineOptions engine;
};

serve::ApiServer<HostBackend>* running_server = nullptr;
void stop_on_signal(int) {
  if (running_server) running_server->stop();
}

void run_serve(ServeArgs a) {
  if (a.server.api_key.empty())
    if (const char* key = std::getenv("FLAS_API_KEY")) a.server.api_key = key;
  auto model = gemma2::Model<HostBackend>::load(a.model_dir);
  const auto tok = io::Tokenizer::load(a.model_dir);
  a.engine.context = std::min(a.engine.context, model.config().max_position_embeddings);
  std::optional<field::FlasFlow<HostBackend>> flow;
  field::FlowMeta meta;
  serve::SteeringDefaults steering;
  if (!a.flow.empty()) {
    std::filesystem::path file = a.flow;
    if (std::filesystem::is_directory(file)) file /= "flow.safetensors";  // a flow folder
    const auto meta_file = field::flow_meta_path(file);
    FLAS_CHECK(std::filesystem::exists(meta_file), "--flow: ", meta_file.string(),
               " is missing (the flow's JSON gives its steering layer, steps and default flow time)");
    meta = field::read_flow_meta(meta_file);
    flow.emplace(model.config(), model.inv_freq(), field::load_flow_weights(file, model.config()));
    steering = {true, meta.flowtime, meta.steps};
  }
  if (a.server.model_name.empty()) a.server.model_name = std::filesystem::path(a.model_dir).filename().string();
  if (a.server.model_name.empty()) a.server.model_name = std::filesystem::path(a.model_dir).parent_path().filename().string();

  serve::Metrics metrics;
  serve::BatchEngine<HostBackend> engine(model, tok, flow ? &*flow : nullptr, meta, a.engine, &metrics);
  serve::ApiServer<HostBackend> server(engine, tok, model.config(), steering, a.server, metrics);
  const int port = server.bind();
  if (!serve::is_loopback_host(a.server.host) && a.server.api_key.empty())
    std::fprintf(stderr, "[flas serve] WARNING: listening on %s, beyond this machine, without an API key: anyone who can reach "
                         "it may use it (give --api-key or FLAS_API_KEY)\n", a.server.host.c_str());
  engine.start();
  running_server = &server;
  std::signal(SIGINT, stop_on_signal);
  std::signal(SIGTERM, stop_on_signal);
  std::fprintf(stderr, "[flas serve] model %s (%s), %s; batch %lld rows, context %lld, queue %lld; listening on http://%s:%d\n",
               a.server.model_name.c_str(), HostBackend::name, flow ? ("flow " + a.flow + ", layer " + std::to_string(meta.layer)).c_str() : "no flow (unsteered only)",
               static_cast<long long>(a.engine.max_batch), static_cast<long long>(a.engine.context),
               static_cast<long long>(a.engine.max_queue), a.server.host.c_str(), port);
  std::fflush(stderr);
  server.listen();
  running_server = nullptr;
  engine.stop();
  std::fprintf(stderr, "[flas serve] stopped\n");
}
}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  a->server.model_name.clear();
  auto* cmd = app.add_subcommand("serve", "Serve an OpenAI-compatible API with per-request steering (continuous batching)");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  add_precision_option(cmd);
  cmd->add_option("--flow", a->flow, "Flow checkpoint (.safetensors, its .json beside it) or flow folder; without it, no steering");
  cmd->add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->server.port, "Port (0: any free port, printed at start-up)")->capture_default_str();
  cmd->add_option("--max-batch", a->engine.max_batch, "Rows decoded together")->capture_default_str();
  cmd->add_option("--ctx", a->engine.context, "Tokens per row: prompt + generated (at most the model's context)")->capture_default_str();
  cmd->add_option("--max-queue", a->engine.max_queue, "Requests that may wait for a row; beyond: 503")->capture_default_str();
  cmd->add_option("--api-key", a->server.api_key, "Require 'Authorization: Bearer KEY' (or set FLAS_API_KEY)");
  cmd->add_option("--max-prompt-tokens", a->server.max_prompt_tokens, "Longest prompt accepted (0: the context less one)")->capture_default_str();
  cmd->add_option("--max-body-bytes", a->server.max_body_bytes, "Largest request body accepted")->capture_default_str();
  cmd->add_option("--default-max-tokens", a->server.default_max_tokens, "max_tokens when a request gives none")->capture_default_str();
  cmd->add_option("--timeout", a->server.request_timeout_seconds, "Seconds a request may take before it is stopped (504)")->capture_default_str();
  cmd->add_option("--model-name", a->server.model_name, "Model id reported by /v1/models (default: the folder's name)");
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace flas::cli
