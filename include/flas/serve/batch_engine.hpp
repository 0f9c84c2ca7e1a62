#pragma once
// The continuous-batching engine: one decode loop that, at every token boundary, retires finished,
// cancelled and timed-out rows, admits queued requests (prefilled together, left-padded, in a batch of
// their own), merges them into the running batch and runs one decode step for every row.
//
// Slot layout. The model's KV cache gives all rows one slot axis (slot = step). Here every row's tokens
// are kept contiguous and right-aligned at the end of the used slots, [L − count, L), exactly as in a
// solo run shifted by masked slots: the sliding window, which counts slots, then sees the same tokens,
// attention starts at a row's first visible key (so its key blocks round as they do alone), and every
// decode step appends one slot for all rows. Each admitted request is prefilled on its own, which is
// the very computation of a solo run (a left-padded batch would round its prompt differently). Whenever rows join or leave (or the slots run
// out) the batch is recomposed: a new cache of exactly the surviving rows, each row's K/V — and the
// flow's per-slot self-attention caches — copied into place, L shrunk to the longest row. A row
// therefore never waits for others, never computes padding after its prefill, and gives the tokens it
// gives alone (tests/serve checks this against flas::generate).
#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "flas/field/flow_checkpoint.hpp"
#include "flas/generate/generate.hpp"
#include "flas/models/gemma2/model.hpp"
#include "flas/serve/batch_steering.hpp"
#include "flas/serve/job.hpp"
#include "flas/serve/metrics.hpp"

namespace flas::serve {

struct EngineOptions {
  std::int64_t max_batch = 8;    // rows decoded together
  std::int64_t context = 1024;   // slots per row: prompt + generated tokens must fit
  std::int64_t max_queue = 64;   // requests waiting for a row; more are refused
};

// Counters for tests and logs (the engine's thread writes them; read them when it is stopped or idle).
struct EngineStats {
  std::int64_t admitted = 0, retired = 0, decode_steps = 0, recompositions = 0, max_rows = 0;
  std::int64_t admitted_into_running_batch = 0;  // admissions while other rows were mid-generation
};

template <Backend B>
class BatchEngine {
 public:
  using Flow = field::FlasFlow<B>;

  // `flow` may be null (no steering); `meta` gives its layer, concept layers and solver.
  BatchEngine(const gemma2::Model<B>& model, const io::Tokenizer& tok, const Flow* flow, field::FlowMeta meta,
              EngineOptions opt, Metrics* metrics = nullptr)
      : model_(model), flow_(flow), meta_(std::move(meta)), opt_(opt), metrics_(metrics),
        solver_(gemma2::flow_solver_from_name(meta_.solver)) {
    FLAS_CHECK(opt_.max_batch >= 1, "serve: --max-batch must be at least 1, got ", opt_.max_batch);
    FLAS_CHECK(opt_.max_queue >= 0, "serve: --max-queue must be >= 0, got ", opt_.max_queue);
    FLAS_CHECK(opt_.context >= 2 && opt_.context <= model.config().max_position_embeddings, "serve: --ctx must be in [2, ",
               model.config().max_position_embeddings, "] (the model's context), got ", opt_.context);
    if (flow_) {
      FLAS_CHECK(meta_.layer >= 0 && meta_.layer < model.config().num_hidden_layers, "serve: the flow's steering layer ",
                 meta_.layer, " is not a layer of the model");
      concepts_.emplace(model, tok, *flow_, meta_.concept_layers);
    }
    if (metrics_) metrics_->max_batch = opt_.max_batch;
  }
  BatchEngine(const BatchEngine&) = delete;
  ~BatchEngine() { stop(); }

  const EngineOptions& options() const { return opt_; }
  bool can_steer() const { return flow_ != nullptr; }

  // Queues a job; false when the queue is full (the caller answers 503).
  bool submit(std::shared_ptr<Job> job) {
    FLAS_CHECK(!job->prompt.empty() && std::int64_t(job->prompt.size()) + job->max_tokens <= opt_.context,
               "serve: a prompt of ", job->prompt.size(), " tokens plus ", job->max_tokens,
               " new tokens does not fit the context of ", opt_.context);
    FLAS_CHECK(!(job->steering && job->steering->steers()) || flow_, "serve: a steered request but no flow loaded");
    {
      std::lock_guard lock(queue_m_);
      if (std::int64_t(queue_.size()) >= opt_.max_queue) return false;
      queue_.push_back(std::move(job));
      if (metrics_) metrics_->queue_depth = std::int64_t(queue_.size());
    }
    wake_.notify_one();
    return true;
  }

  // The decode loop on its own thread, until stop().
  void start() {
    stopping_ = false;
    loop_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard lock(queue_m_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (loop_.joinable()) loop_.join();
  }

  // One token boundary. Returns false when there was nothing to do. Call from one thread only (the
  // loop's, or a test's when the loop is not started).
  bool step() {
    const bool changed = retire_rows();
    const auto running = std::count_if(rows_.begin(), rows_.end(), [](const Row& r) { return !r.done; });
    auto admitted = take_admissible(opt_.max_batch - std::int64_t(running));
    std::vector<Batch> fresh;
    for (auto& job : admitted)
      if (auto b = prefill(job)) fresh.push_back(std::move(*b));
    const bool slots_full = !rows_.empty() && cache_.length == cache_.capacity;
    if (changed || !fresh.empty() || slots_full) {
      if (!fresh.empty() && running > 0) stats_.admitted_into_running_batch += std::int64_t(fresh.size());
      recompose(fresh);
    }
    if (metrics_) metrics_->active_rows = std::int64_t(rows_.size());
    if (rows_.empty()) return changed || !admitted.empty();
    decode();
    return true;
  }

  const EngineStats& stats() const { return stats_; }
  std::int64_t active_rows() const { return std::int64_t(rows_.size()); }
  std::int64_t queued() const {
    std::lock_guard lock(queue_m_);
    return std::int64_t(queue_.size());
  }

 private:
  struct Row {
    std::shared_ptr<Job> job;
    Sampler sampler;
    RowSteering<B> steering;
    std::int64_t next_token = 0, generated = 0;
    bool done = false;
  };
  // A batch of rows with its KV cache and steering tap (the running one, or freshly prefilled rows).
  struct Batch {
    std::vector<Row> rows;
    gemma2::KVCache<B> cache;
    BatchSteering<B> tap;
  };

  void run() {
    for (;;) {
      {
        std::unique_lock lock(queue_m_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !rows_.empty(); });
        if (stopping_) break;
      }
      try {
        step();
      } catch (const std::exception& e) {  // never take the server down: fail the rows in flight
        fail_in_flight(std::string("generation failed: ") + e.what());
      }
    }
    fail_in_flight("the server is shutting down");
    std::lock_guard lock(queue_m_);
    for (auto& j : queue_) j->finish(FinishReason::error, "the server is shutting down");
    queue_.clear();
  }

  void fail_in_flight(const std::string& why) {
    for (auto& r : rows_) r.job->finish(FinishReason::error, why);
    for (auto& j : admitting_) j->finish(FinishReason::error, why);
    rows_.clear();
    admitting_.clear();
    cache_ = {};
    tap_ = {};
    if (metrics_) metrics_->active_rows = 0;
  }

  // Why a job should stop now, if it should (cancelled by its client, or past its deadline).
  std::optional<FinishReason> interrupted(const Job& j, Job::clock::time_point now) const {
    if (j.cancel_requested()) return FinishReason::cancelled;
    if (now > j.deadline) return FinishReason::timeout;
    return std::nullopt;
  }
  void finish_interrupted(Job& j, FinishReason why) {
    if (metrics_) ++(why == FinishReason::timeout ? metrics_->timed_out : metrics_->cancelled);
    j.finish(why, why == FinishReason::timeout ? "the request timed out" : "");
  }

  bool retire_rows() {
    const auto now = Job::clock::now();
    bool any = false;
    for (auto& r : rows_) {
      if (!r.done)
        if (auto why = interrupted(*r.job, now)) {
          finish_interrupted(*r.job, *why);
          r.done = true;
        }
      any = any || r.done;
    }
    return any;
  }

  // Up to `free_rows` queued jobs; cancelled or expired ones are finished and dropped on the way.
  std::vector<std::shared_ptr<Job>> take_admissible(std::int64_t free_rows) {
    std::vector<std::shared_ptr<Job>> out;
    const auto now = Job::clock::now();
    std::lock_guard lock(queue_m_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (auto why = interrupted(**it, now)) {
        finish_interrupted(**it, *why);
        it = queue_.erase(it);
      } else if (std::int64_t(out.size()) < free_rows) {
        out.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (metrics_) metrics_->queue_depth = std::int64_t(queue_.size());
    admitting_ = out;
    return out;
  }

  RowSteering<B> row_steering(const Job& j) {
    if (!j.steering || !j.steering->steers()) return {};
    const std::size_t misses = concepts_->misses();
    RowSteering<B> s{concepts_->get(j.steering->concept_text), j.steering->flowtime, j.steering->steps};
    if (metrics_) ++(concepts_->misses() > misses ? metrics_->concept_cache_misses : metrics_->concept_cache_hits);
    return s;
  }

  // Takes the sampled token; true when the row has finished.
  bool accept(Row& r, std::int64_t token) {
    const auto& cfg = model_.config();
    if (cfg.is_eos(token)) {
      finish_done(r, FinishReason::stop);
      return true;
    }
    if (r.generated == 0 && metrics_)
      metrics_->time_to_first_token.observe(std::chrono::duration<double>(Job::clock::now() - r.job->arrived).count());
    r.job->push_token(token);
    ++r.generated;
    if (metrics_) ++metrics_->completion_tokens;
    r.next_token = token;
    if (r.generated >= r.job->max_tokens) {
      finish_done(r, FinishReason::length);
      return true;
    }
    return false;
  }
  void finish_done(Row& r, FinishReason why) {
    r.done = true;
    if (metrics_) metrics_->request_latency.observe(std::chrono::duration<double>(Job::clock::now() - r.job->arrived).count());
    r.job->finish(why);
  }

  // Prefills one admitted job (alone: exactly a solo run's prefill) and samples its first token.
  std::optional<Batch> prefill(const std::shared_ptr<Job>& job) {
    RowSteering<B> steering;
    try {
      steering = row_steering(*job);
    } catch (const std::exception& e) {
      job->finish(FinishReason::error, std::string("steering: ") + e.what());
      return std::nullopt;
    }
    Batch b;
    b.rows.push_back(Row{job, Sampler(job->sampling), steering});
    if (metrics_) metrics_->prompt_tokens += job->prompt.size();
    const auto& cfg = model_.config();
    const auto P = std::int64_t(job->prompt.size());
    Tensor ids = Tensor::empty({1, P}, DType::I64);
    std::copy(job->prompt.begin(), job->prompt.end(), ids.data<std::int64_t>());
    b.cache = model_.new_cache(1, P);
    b.tap = BatchSteering<B>(flow_, meta_.layer, solver_, {steering});
    const Tensor logits = host_logits_f32(model_.logits(gemma2::Model<B>::last_positions(model_.forward(ids, Tensor{}, b.cache, b.tap))));
    ++stats_.admitted;
    accept(b.rows[0], b.rows[0].sampler.sample(logits.data<float>(), cfg.vocab_size));
    return b;
  }

  // Row `src_row`'s last `count` slots before src_end, to dst_row's slots before dst_end; the dst row's
  // slots before them are zeroed (masked, never weighted, but never uninitialised memory either).
  static void copy_slots(const tensor_t<B>& src, std::int64_t src_row, std::int64_t src_end, tensor_t<B>& dst,
                         std::int64_t dst_row, std::int64_t dst_end, std::int64_t count) {
    const auto s = src[src_row].slice(src_end - count, src_end);
    auto d = dst[dst_row].slice(dst_end - count, dst_end);
    B::copy(d, s);
    if (dst_end > count) {
      auto before = dst[dst_row].slice(0, dst_end - count);
      B::fill(before, 0.0f);
    }
  }

  // The new running batch: the unfinished rows of the old one and of `fresh`, ordered by steering group,
  // each row's cache slots right-aligned at the new end L = the longest row.
  void recompose(std::vector<Batch>& fresh) {
    struct Source {
      Row row;
      const Batch* from;
      std::int64_t index;
    };
    Batch old{std::move(rows_), std::move(cache_), std::move(tap_)};
    std::vector<Source> kept;
    for (std::size_t i = 0; i < old.rows.size(); ++i)
      if (!old.rows[i].done) kept.push_back({std::move(old.rows[i]), &old, std::int64_t(i)});
      else ++stats_.retired;
    for (auto& f : fresh)
      for (std::size_t i = 0; i < f.rows.size(); ++i)
        if (!f.rows[i].done) kept.push_back({std::move(f.rows[i]), &f, std::int64_t(i)});
        else ++stats_.retired;
    std::stable_sort(kept.begin(), kept.end(), [](const Source& x, const Source& y) { return x.row.steering.group_key() < y.row.steering.group_key(); });
    ++stats_.recompositions;
    if (metrics_) ++metrics_->recompositions;
    rows_.clear();
    cache_ = {};
    tap_ = {};
    admitting_.clear();
    if (kept.empty()) return;

    const auto n = std::int64_t(kept.size());
    std::int64_t L = 0;
    for (const auto& s : kept) L = std::max(L, s.from->cache.real[std::size_t(s.index)]);
    auto cache = model_.new_cache(n, opt_.context);
    std::vector<RowSteering<B>> steer;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto& s = kept[std::size_t(i)];
      const auto& src = s.from->cache;
      const std::int64_t count = src.real[std::size_t(s.index)];
      for (std::size_t l = 0; l < cache.k.size(); ++l) {
        copy_slots(src.k[l], s.index, src.length, cache.k[l], i, L, count);
        copy_slots(src.v[l], s.index, src.length, cache.v[l], i, L, count);
      }
      std::fill_n(cache.valid.begin() + i * cache.capacity + (L - count), count, std::uint8_t(1));
      cache.real[std::size_t(i)] = count;
      steer.push_back(s.row.steering);
    }
    cache.length = L;
    BatchSteering<B> tap(flow_, meta_.layer, solver_, steer);
    for (std::int64_t i = 0; i < n; ++i) {  // the flow's per-slot caches follow their rows
      const auto& s = kept[std::size_t(i)];
      if (!s.row.steering.steered()) continue;
      auto* to = tap.group_of(i);
      const auto* from = s.from->tap.group_of(s.index);
      FLAS_CHECK(to && from && to->steps == from->steps, "serve: a steered row lost its steering group");
      const std::int64_t count = s.from->cache.real[std::size_t(s.index)], src_end = s.from->cache.length;
      for (std::size_t k = 0; k < from->slots.size(); ++k) {
        while (to->slots.size() <= k) to->slots.push_back(flow_->new_slot_cache(to->end - to->begin, opt_.context));
        for (std::size_t blk = 0; blk < from->slots[k].k.size(); ++blk) {
          copy_slots(from->slots[k].k[blk], s.index - from->begin, src_end, to->slots[k].k[blk], i - to->begin, L, count);
          copy_slots(from->slots[k].v[blk], s.index - from->begin, src_end, to->slots[k].v[blk], i - to->begin, L, count);
        }
      }
    }
    for (auto& s : kept) rows_.push_back(std::move(s.row));
    cache_ = std::move(cache);
    tap_ = std::move(tap);
    stats_.max_rows = std::max(stats_.max_rows, n);
  }

  void decode() {
    const auto t0 = Job::clock::now();
    const auto n = std::int64_t(rows_.size());
    Tensor ids = Tensor::empty({n, 1}, DType::I64);
    for (std::int64_t i = 0; i < n; ++i) ids.data<std::int64_t>()[i] = rows_[std::size_t(i)].next_token;
    const auto& cfg = model_.config();
    const Tensor logits = host_logits_f32(model_.logits(gemma2::Model<B>::last_positions(model_.forward(ids, Tensor{}, cache_, tap_))));
    for (std::int64_t i = 0; i < n; ++i) {
      auto& r = rows_[std::size_t(i)];
      accept(r, r.sampler.sample(logits.data<float>() + i * cfg.vocab_size, cfg.vocab_size));
    }
    ++stats_.decode_steps;
    if (metrics_) {
      ++metrics_->decode_steps;
      metrics_->batch_occupancy.observe(double(n));
      metrics_->decode_step_seconds.observe(std::chrono::duration<double>(Job::clock::now() - t0).count());
    }
  }

  const gemma2::Model<B>& model_;
  const Flow* flow_;
  field::FlowMeta meta_;
  EngineOptions opt_;
  Metrics* metrics_;
  gemma2::FlowSolver solver_;
  std::optional<ConceptCache<B>> concepts_;

  std::vector<Row> rows_;
  gemma2::KVCache<B> cache_;
  BatchSteering<B> tap_;
  std::vector<std::shared_ptr<Job>> admitting_;  // taken from the queue, not yet in rows_
  EngineStats stats_;

  mutable std::mutex queue_m_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::thread loop_;
};

}  // namespace flas::serve
