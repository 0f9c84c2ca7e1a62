#pragma once
// Generation across ranks (`mpirun -np K flas eval generate`): rank r takes whole batches of the plan,
// r, r+K, r+2K, ..., so each batch is generated exactly as one process generates it (same rows, same
// seed: the same tokens), and appends them to its own part file beside the generations. When all ranks
// are done, rank 0 merges every part into the one generations file in plan order and removes the parts.
// A killed run leaves part files; the next run (with any number of ranks) merges them first, so nothing
// finished is generated twice.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "flas/distributed/communicator.hpp"
#include "flas/eval/generation_grid.hpp"
#include "flas/eval/generation_store.hpp"

namespace flas::eval {

inline std::filesystem::path generation_part_file(const std::filesystem::path& generations, int rank) {
  return generations.parent_path() / (generations.stem().string() + ".part-" + std::to_string(rank) + ".jsonl");
}

// The part files beside `generations`, whichever number of ranks wrote them.
inline std::vector<std::filesystem::path> generation_part_files(const std::filesystem::path& generations) {
  std::vector<std::filesystem::path> parts;
  const auto dir = generations.parent_path().empty() ? std::filesystem::path(".") : generations.parent_path();
  if (!std::filesystem::is_directory(dir)) return parts;
  const std::string prefix = generations.stem().string() + ".part-";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind(prefix, 0) == 0 && e.path().extension() == ".jsonl") parts.push_back(e.path());
  }
  std::sort(parts.begin(), parts.end());
  return parts;
}

// Appends the part files' records that `store` lacks, in plan order (one write), then removes the
// parts. Returns how many records were added.
inline std::size_t merge_generation_parts(GenerationStore& store, const std::vector<GridBatch>& plan,
                                          const std::filesystem::path& generations) {
  const auto parts = generation_part_files(generations);
  std::map<std::string, GenerationRecord> found;
  for (const auto& p : parts) {
    const GenerationStore part(p);
    for (const auto& r : part.records()) found.emplace(r.cell.key(), r);
  }
  std::vector<GenerationRecord> ordered;
  std::size_t in_plan = 0;  // part records whose cell the plan has (a part record is never dropped silently)
  for (const auto& b : plan)
    for (const auto& c : b.cells)
      if (auto it = found.find(c.key.key()); it != found.end()) {
        ++in_plan;
        if (!store.has(c.key)) ordered.push_back(it->second);
      }
  FLAS_CHECK(in_plan == found.size(), generations.string(),
             ": the part files hold generations of cells that this run's plan does not have "
             "(was the config changed since they were written?)");
  store.append(ordered);  // fsynced before the parts go
  for (const auto& p : parts) std::filesystem::remove(p);
  return ordered.size();
}

// This rank's batches of the plan that `done` does not fully hold yet.
inline std::vector<GridBatch> batches_of_rank(const std::vector<GridBatch>& plan, const GenerationStore& done,
                                              const distributed::Communicator& comm) {
  std::vector<GridBatch> mine;
  for (std::size_t i = std::size_t(comm.rank()); i < plan.size(); i += std::size_t(comm.size())) {
    bool complete = true;
    for (const auto& c : plan[i].cells) complete = complete && done.has(c.key);
    if (!complete) mine.push_back(plan[i]);
  }
  return mine;
}

}  // namespace flas::eval
