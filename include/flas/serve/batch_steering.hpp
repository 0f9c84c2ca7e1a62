#pragma once
// The steering tap of a continuous batch. Rows are kept ordered so that the steered ones form
// contiguous groups of equal step count N (unsteered rows first, untouched: they cost no flow work).
// Each group is steered by the library's own gemma2::FlowSteering over a first-dimension slice of the
// batch, so a row is integrated by exactly the code `flas steer` uses. FlowSteering fixes its rows'
// concepts and flow times when built, and the batch changes only between tokens, so a new FlowSteering
// is built for each batch composition; what must survive a recomposition — the flow's self-attention
// cache of every evaluation slot, [rows, capacity, nKV, hd] like the model's KV cache — lives here, in
// storage the scheduler moves rows of, handed to FlowSteering through a thin field wrapper.
#include <deque>
#include <memory>
#include <vector>

#include "flas/field/flas_flow.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas/serve/concept_cache.hpp"

namespace flas::serve {

// FlasFlow with its slot caches kept outside FlowSteering: the k-th slot cache FlowSteering asks for is
// `storage[k]` (FlowSteering asks for them in slot order).
template <Backend B>
class SharedSlotField {
 public:
  using Flow = field::FlasFlow<B>;
  using Conditioning = typename Flow::Conditioning;
  using SlotCache = typename Flow::SlotCache*;

  SharedSlotField(const Flow& flow, std::deque<typename Flow::SlotCache>& storage, std::int64_t rows)
      : flow_(flow), storage_(storage), rows_(rows) {}

  DType parameter_dtype() const { return flow_.parameter_dtype(); }
  SlotCache new_slot_cache(std::int64_t batch, std::int64_t capacity) const {
    FLAS_CHECK(batch == rows_, "serve: a steering group of ", rows_, " rows was asked for a slot cache of ", batch);
    const std::size_t k = handed_out_++;
    if (k == storage_.size()) storage_.push_back(flow_.new_slot_cache(batch, capacity));
    auto& c = storage_[k];
    if (!c.k.empty())
      FLAS_CHECK(c.k[0].dim(0) == batch && c.k[0].dim(1) == capacity, "serve: slot cache ", k, " has shape ",
                 c.k[0].shape(), ", expected ", batch, " rows of ", capacity, " slots");
    return &c;
  }
  tensor_t<B> velocity(const tensor_t<B>& h, std::span<const float> t, const Conditioning& cond,
                       const gemma2::TokenLayout& at, SlotCache& cache) const {
    return flow_.velocity(h, t, cond, at, *cache);
  }

 private:
  const Flow& flow_;
  std::deque<typename Flow::SlotCache>& storage_;
  std::int64_t rows_;
  mutable std::size_t handed_out_ = 0;
};

// One row's steering as the tap needs it (no concept: unsteered).
template <Backend B>
struct RowSteering {
  std::shared_ptr<const typename field::FlasFlow<B>::Conditioning> concept_conditioning;
  float flowtime = 0;
  int steps = 0;
  bool steered() const { return concept_conditioning != nullptr; }
  int group_key() const { return steered() ? steps : 0; }  // rows are ordered by this key
};

template <Backend B>
class BatchSteering {
 public:
  using Flow = field::FlasFlow<B>;
  struct Group {
    std::int64_t begin = 0, end = 0;  // rows [begin, end) of the batch
    int steps = 0;
    std::deque<typename Flow::SlotCache> slots;  // per evaluation slot, [end − begin, capacity, ...]
    std::unique_ptr<SharedSlotField<B>> field;
    std::unique_ptr<gemma2::FlowSteering<B, SharedSlotField<B>>> steering;
  };

  BatchSteering() = default;
  // `rows` must already be ordered by group_key (see order_rows).
  BatchSteering(const Flow* flow, int layer, gemma2::FlowSolver solver, const std::vector<RowSteering<B>>& rows)
      : layer_(layer) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (!rows[i].steered()) continue;
      FLAS_CHECK(flow, "serve: a steered row but no flow loaded");
      if (groups_.empty() || groups_.back()->steps != rows[i].steps || groups_.back()->end != std::int64_t(i)) {
        FLAS_CHECK(groups_.empty() || groups_.back()->steps < rows[i].steps, "serve: steered rows are not ordered by step count");
        auto g = std::make_unique<Group>();
        g->begin = std::int64_t(i);
        g->steps = rows[i].steps;
        groups_.push_back(std::move(g));
      }
      groups_.back()->end = std::int64_t(i) + 1;
    }
    for (auto& g : groups_) {
      std::vector<const typename Flow::Conditioning*> conds;
      std::vector<float> T;
      for (std::int64_t i = g->begin; i < g->end; ++i) {
        conds.push_back(rows[std::size_t(i)].concept_conditioning.get());
        T.push_back(rows[std::size_t(i)].flowtime);
      }
      g->field = std::make_unique<SharedSlotField<B>>(*flow, g->slots, g->end - g->begin);
      g->steering = std::make_unique<gemma2::FlowSteering<B, SharedSlotField<B>>>(
          *g->field, stack_conditionings<B>(conds), gemma2::SteeringOptions{layer, g->steps, T, {}, 1.0f, solver});
    }
  }

  bool wants(int layer) const { return layer == layer_ && !groups_.empty(); }

  void operator()(gemma2::TapSite<B>& site) {
    for (auto& g : groups_) {
      auto h = site.h.slice(g->begin, g->end);
      const Tensor positions = site.positions.slice(g->begin, g->end);
      gemma2::TapSite<B> part{site.layer, h, positions, site.key_valid + g->begin * site.capacity, site.capacity, site.past};
      (*g->steering)(part);
    }
  }

  // The group holding batch row `row` (nullptr: unsteered) — for moving its slot caches.
  const Group* group_of(std::int64_t row) const {
    for (const auto& g : groups_)
      if (g->begin <= row && row < g->end) return g.get();
    return nullptr;
  }
  Group* group_of(std::int64_t row) { return const_cast<Group*>(std::as_const(*this).group_of(row)); }
  std::size_t group_count() const { return groups_.size(); }

 private:
  int layer_ = -1;
  std::vector<std::unique_ptr<Group>> groups_;
};

}  // namespace flas::serve
