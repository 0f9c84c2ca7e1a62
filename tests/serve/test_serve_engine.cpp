// The continuous-batching engine against independent computations: every request, greedy or seeded,
// steered (various concepts, flow times, step counts) or not, admitted into a running batch at
// different token boundaries, gives exactly the tokens flas::generate gives it alone (the path
// `flas generate` / `flas steer` take); the scheduler admits up to --max-batch rows, queues and refuses
// beyond, retires finished and cancelled rows, and times out.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>

#include "flas/backends/cpu.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/serve/batch_engine.hpp"

using namespace flas;
using namespace flas::serve;
using B = CpuBackend;

namespace {
struct Rig {
  std::string model_dir = std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat";
  std::string flow_file = std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat-flow/flow.safetensors";
  gemma2::Model<B> model = gemma2::Model<B>::load(model_dir);
  io::Tokenizer tok = io::Tokenizer::load(model_dir);
  field::FlowMeta meta = field::read_flow_meta(field::flow_meta_path(flow_file));
  field::FlasFlow<B> flow{model.config(), model.inv_freq(), field::load_flow_weights(flow_file, model.config())};

  std::vector<std::int64_t> chat(const std::string& text) const { return io::encode_chat(tok, text, model.config().bos_token_id); }

  // The request run alone through flas::generate, as `flas steer` runs it; eos dropped.
  std::vector<std::int64_t> solo(const Job& j) const {
    GenerateOptions opt;
    opt.max_new_tokens = j.max_tokens;
    opt.sampling = j.sampling;
    GenerateResult r;
    if (!j.steering || !j.steering->steers()) {
      r = generate(model, {j.prompt}, opt, gemma2::NoTap{});
    } else {
      const auto& cfg = model.config();
      auto [ids, mask] = condition::tokenize_concepts(tok, {j.steering->concept_text}, cfg.bos_token_id, cfg.pad_token_id);
      const auto concepts = condition::encode_concepts(model, ids, mask, meta.concept_layers);
      gemma2::FlowSteering<B, field::FlasFlow<B>> tap(flow, flow.condition(concepts),
                                                      {meta.layer, j.steering->steps, {j.steering->flowtime}, {}, 1.0f});
      r = generate(model, {j.prompt}, opt, tap);
    }
    auto t = r.tokens[0];
    if (!t.empty() && model.config().is_eos(t.back())) t.pop_back();
    return t;
  }

  std::shared_ptr<Job> job(const std::string& prompt, std::int64_t max_tokens, std::optional<SteeringSpec> s = {},
                           SamplingOptions sampling = {}) const {
    auto j = std::make_shared<Job>();
    j->prompt = chat(prompt);
    j->max_tokens = max_tokens;
    j->steering = std::move(s);
    j->sampling = sampling;
    return j;
  }
};

Rig& rig() {
  static Rig r;
  return r;
}

void run_until_idle(BatchEngine<B>& e, int max_steps = 10000) {
  for (int i = 0; i < max_steps && (e.active_rows() > 0 || e.queued() > 0); ++i) e.step();
  REQUIRE(e.active_rows() == 0);
  REQUIRE(e.queued() == 0);
}
}  // namespace

TEST_CASE("every row of a continuous batch gets exactly the tokens it gets alone") {
  auto& r = rig();
  Metrics metrics;
  BatchEngine<B> engine(r.model, r.tok, &r.flow, r.meta, {8, 256, 16}, &metrics);
  const SteeringSpec ocean{"the ocean and sea creatures", 4.0f, 3}, science{"scientific terms related to research findings", 2.0f, 3},
      ocean_two_steps{"the ocean and sea creatures", 3.0f, 2}, off{"ignored at T = 0", 0.0f, 3};
  std::vector<std::shared_ptr<Job>> jobs = {
      r.job("How do I rent a car?", 24),                                     // greedy, unsteered
      r.job("How do I rent a car?", 24, ocean),                              // same prompt, steered
      r.job("Write a short poem about my cat.", 20, science),                // another concept and T
      r.job("What is the capital of France?", 18, ocean_two_steps),          // another step count: its own group
      r.job("Tell me a story.", 16, off),                                     // T = 0: unsteered
      r.job("Give me three tips for sleeping well.", 22, ocean, {0.8f, 0, 0.95f, 7}),  // sampled, seeded
      r.job("How do I rent a car?", 12),                                      // short: retires early
  };
  // Arrivals at different token boundaries: rows join a batch that is already decoding.
  engine.submit(jobs[0]);
  engine.submit(jobs[1]);
  engine.step();
  engine.step();
  engine.step();
  engine.submit(jobs[2]);
  engine.submit(jobs[3]);
  engine.step();
  engine.submit(jobs[4]);
  engine.submit(jobs[6]);
  for (int i = 0; i < 5; ++i) engine.step();
  engine.submit(jobs[5]);
  run_until_idle(engine);

  for (std::size_t i = 0; i < jobs.size(); ++i) {
    INFO("request ", i);
    const auto p = jobs[i]->progress();
    CHECK(p.finish != FinishReason::running);
    CHECK(p.finish != FinishReason::error);
    CHECK(p.tokens == r.solo(*jobs[i]));
  }
  CHECK(engine.stats().admitted == 7);
  CHECK(engine.stats().admitted_into_running_batch >= 4);
  CHECK(metrics.completion_tokens > 0);
  CHECK(metrics.concept_cache_hits >= 2);  // "the ocean ..." was encoded once
  // Steering really acts: the steered twin of request 0 differs from it.
  CHECK(jobs[0]->progress().tokens != jobs[1]->progress().tokens);
}

TEST_CASE("the scheduler admits up to max_batch rows, queues the rest, refuses beyond the queue, retires and cancels") {
  auto& r = rig();
  BatchEngine<B> engine(r.model, r.tok, &r.flow, r.meta, {2, 128, 4});
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(r.job("Question number " + std::to_string(i), 6 + 4 * i));
    CHECK(engine.submit(jobs.back()));
  }
  auto extra = r.job("One too many", 4);
  CHECK(engine.submit(extra));
  CHECK(engine.queued() == 4);
  CHECK(!engine.submit(r.job("refused", 4)));  // queue full (max_queue 4)
  engine.step();
  CHECK(engine.active_rows() == 2);  // max_batch
  CHECK(engine.queued() == 2);
  // Cancel the second running row: it leaves at the next boundary and a queued job takes its place.
  jobs[1]->request_cancel();
  engine.step();
  CHECK(jobs[1]->progress().finish == FinishReason::cancelled);
  CHECK(engine.active_rows() == 2);
  // A queued job whose deadline passed is finished with a timeout, never run.
  extra->deadline = Job::clock::now() - std::chrono::seconds(1);
  run_until_idle(engine);
  CHECK(extra->progress().finish == FinishReason::timeout);
  CHECK(extra->progress().tokens.empty());
  CHECK(engine.stats().max_rows == 2);
  for (int i : {0, 2}) {
    const auto p = jobs[std::size_t(i)]->progress();
    CHECK((p.finish == FinishReason::length || p.finish == FinishReason::stop));
    CHECK(p.tokens == r.solo(*jobs[std::size_t(i)]));
  }
  CHECK(engine.stats().retired == 3);
}

TEST_CASE("the decode loop thread serves submitted jobs and stops cleanly") {
  auto& r = rig();
  BatchEngine<B> engine(r.model, r.tok, &r.flow, r.meta, {4, 128, 8});
  engine.start();
  auto a = r.job("How do I rent a car?", 10), b = r.job("How do I rent a car?", 10, SteeringSpec{"the ocean", 4.0f, 3});
  engine.submit(a);
  engine.submit(b);
  for (auto& j : {a, b}) {
    for (int i = 0; i < 600 && !j->finished(); ++i) j->wait(j->progress().tokens.size(), std::chrono::milliseconds(100));
    CHECK(j->finished());
    CHECK(j->progress().tokens == r.solo(*j));
  }
  engine.stop();
  auto late = r.job("after stop", 4);
  CHECK(engine.submit(late));
  CHECK(!late->finished());  // nothing runs it; a new loop would
}
