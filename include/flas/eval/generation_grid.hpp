#pragma once
// The generation grid of a run: every (method, concept, instruction, factor, sample) cell, cut into
// batches. Batches are fixed by the config alone (each method's cells in order, `batch_size` at a
// time, concepts and factors mixed within a batch), so a resumed run recomputes exactly the batches an
// uninterrupted run would, with the same per-batch seed: the JSON Lines come out the same.
// The unsteered method ("none") does not depend on the concept: it is generated once per instruction
// and sample (concept ""), and scoring pairs it with every concept.
#include <cstdint>
#include <string>
#include <vector>

#include "flas/eval/eval_config.hpp"
#include "flas/eval/generation_record.hpp"

namespace flas::eval {

struct GridCell {
  CellKey key;
  std::string split;  // "held_in", "held_out" ("" for the concept-free "none" cells)
  std::string instruction;
};

struct GridBatch {
  std::string method;
  std::int64_t index = 0;   // within the method
  std::uint64_t seed = 0;   // sampling seed of this batch
  std::vector<GridCell> cells;
};

inline std::uint64_t batch_seed(std::uint64_t seed, const std::string& method, std::int64_t index) {
  std::uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the method name, then the index
  for (unsigned char ch : method) h = (h ^ ch) * 1099511628211ull;
  return (h ^ std::uint64_t(index)) * 1099511628211ull;
}

inline std::vector<GridBatch> plan_grid(const EvalConfig& c, const std::vector<std::string>& instructions) {
  std::vector<GridBatch> batches;
  std::vector<std::pair<std::string, std::string>> concepts;  // (text, split)
  for (const auto& t : c.held_in) concepts.emplace_back(t, "held_in");
  for (const auto& t : c.held_out) concepts.emplace_back(t, "held_out");
  for (const auto& method : c.methods()) {
    std::vector<GridCell> cells;
    const auto& factors = c.factors.at(method);
    const bool concept_free = method == "none";
    for (std::size_t ci = 0; ci < (concept_free ? 1 : concepts.size()); ++ci)
      for (std::size_t i = 0; i < instructions.size(); ++i)
        for (double f : factors)
          for (std::int64_t s = 0; s < c.samples; ++s) {
            GridCell cell;
            cell.key = {method, concept_free ? "" : concepts[ci].first, c.first_instruction + std::int64_t(i),
                        concept_free ? 0.0 : f, s};
            cell.split = concept_free ? "" : concepts[ci].second;
            cell.instruction = instructions[i];
            cells.push_back(std::move(cell));
          }
    for (std::size_t first = 0; first < cells.size(); first += std::size_t(c.batch_size)) {
      GridBatch b;
      b.method = method;
      b.index = std::int64_t(batches.size());
      b.seed = batch_seed(c.seed, method, b.index);
      const std::size_t end = std::min(cells.size(), first + std::size_t(c.batch_size));
      b.cells.assign(cells.begin() + std::ptrdiff_t(first), cells.begin() + std::ptrdiff_t(end));
      batches.push_back(std::move(b));
    }
  }
  return batches;
}

inline std::size_t count_cells(const std::vector<GridBatch>& batches) {
  std::size_t n = 0;
  for (const auto& b : batches) n += b.cells.size();
  return n;
}

}  // namespace flas::eval
