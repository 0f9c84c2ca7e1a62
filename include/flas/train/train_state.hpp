#pragma once
// Everything a killed run needs to continue exactly: the optimiser step, the data order and cursor,
// the random generator, early-stopping counters, and (in safetensors beside it) the flow's f32
// parameters and AdamW's moments. A state is written into a fresh folder which is then renamed into
// place, and `latest` (written atomically) names it: a crash mid-write leaves the previous state.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/io/atomic_write.hpp"

namespace flas::train {

struct TrainProgress {
  std::int64_t step = 0;              // optimiser steps done
  std::int64_t epoch = 0, cursor = 0; // position in the shuffled training order
  std::vector<std::size_t> order;     // the current epoch's order
  std::mt19937_64 rng;
  double best_val = 1e300;
  std::int64_t evals_without_improvement = 0;
};

inline nlohmann::json progress_to_json(const TrainProgress& p) {
  std::ostringstream rng;
  rng << p.rng;
  return {{"step", p.step},         {"epoch", p.epoch},   {"cursor", p.cursor},
          {"order", p.order},       {"rng", rng.str()},   {"best_val", p.best_val},
          {"evals_without_improvement", p.evals_without_improvement}};
}

inline TrainProgress progress_from_json(const nlohmann::json& j, const std::string& where) {
  TrainProgress p;
  // Counts and row indices must be non-negative JSON integers: nlohmann would turn 1e300 into an
  // integer (undefined behaviour) and -1 into a huge row index.
  auto count = [&](const nlohmann::json& v, const std::string& key) -> std::int64_t {
    if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<std::uint64_t>() > std::uint64_t(INT64_MAX)
                                                          : v.get<std::int64_t>() < 0))
      fail(where, ": field '", key, "' must be a non-negative integer, found ", v.dump());
    return v.get<std::int64_t>();
  };
  try {
    if (!j.is_object()) fail(where, ": a training state must be a JSON object, found ", j.type_name());
    p.step = count(j.at("step"), "step");
    p.epoch = count(j.at("epoch"), "epoch");
    p.cursor = count(j.at("cursor"), "cursor");
    const auto& order = j.at("order");
    if (!order.is_array()) fail(where, ": field 'order' must be an array of row indices, found ", order.type_name());
    for (std::size_t i = 0; i < order.size(); ++i)
      p.order.push_back(std::size_t(count(order[i], flas::detail::concat("order[", i, "]"))));
    std::istringstream rng(j.at("rng").get<std::string>());
    rng >> p.rng;
    FLAS_CHECK(!rng.fail(), where, ": field 'rng' is not a generator state");
    p.best_val = j.at("best_val").get<double>();
    p.evals_without_improvement = count(j.at("evals_without_improvement"), "evals_without_improvement");
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": a training state field is missing or has the wrong type (", e.what(), ")");
  }
  return p;
}

using io::write_text_atomically;

inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  FLAS_CHECK(in, file.string(), ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes a state folder `<dir>/state-<step>` with `fill(folder)`, then points `<dir>/latest` at it and
// removes older state folders.
template <class Fill>
void commit_state_folder(const std::filesystem::path& dir, std::int64_t step, Fill&& fill) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const std::string name = "state-" + std::to_string(step);
  const fs::path tmp = dir / (name + ".tmp"), final_dir = dir / name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  write_text_atomically(dir / "latest", name + "\n");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("state-", 0) == 0 && e.path().filename() != name)
      fs::remove_all(e.path());
}

// The folder `latest` names, or empty when there is none.
inline std::filesystem::path latest_state_folder(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir / "latest")) return {};
  std::string name = read_text(dir / "latest");
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  const auto folder = dir / name;
  // The error_code form: a corrupt name (too long, say) is a refusal, not a filesystem_error.
  std::error_code ec;
  FLAS_CHECK(!name.empty() && std::filesystem::is_directory(folder, ec), (dir / "latest").string(), " names '", name,
             "', which is not a folder");
  return folder;
}

}  // namespace flas::train
