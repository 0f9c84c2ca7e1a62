#pragma once
// llama.cpp control vectors: GGUF files with general.architecture = "controlvector",
// controlvector.model_hint (the model type, e.g. "gemma2"), controlvector.layer_count, and one F32
// tensor direction.N of n_embd per steered layer. llama.cpp adds direction.N to the output of
// decoder block N (0-based), which is flas's steering site "layer N" (docs/interop.md has the
// evidence); it never steers block 0 and refuses direction.0, so flas refuses it too.
// Several files are summed as llama.cpp sums them: Σ scale_i · direction_i per layer, in f32.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "flas/io/gguf_reader.hpp"
#include "flas/io/gguf_writer.hpp"

namespace flas::interop {

struct ControlVector {
  std::string model_hint;
  std::int64_t n_embd = 0;
  std::map<int, std::vector<float>> directions;  // layer N (block N's output) → [n_embd]
};

inline ControlVector read_control_vector(const std::filesystem::path& file) {
  const auto g = io::GgufFile::open(file);
  const std::string f = file.string();
  if (g.has("general.architecture") && g.get<std::string>("general.architecture") != "controlvector")
    fail(f, ": general.architecture is '", g.get<std::string>("general.architecture"), "', expected 'controlvector'");
  ControlVector cv;
  if (g.has("controlvector.model_hint")) cv.model_hint = g.get<std::string>("controlvector.model_hint");
  for (const auto& t : g.tensors()) {
    // llama.cpp refuses a file with any tensor other than direction.N; so does flas.
    if (t.name.rfind("direction.", 0) != 0) fail(f, ": tensor '", t.name, "': a control vector holds only direction.N tensors");
    const std::string index = t.name.substr(10);
    if (index.empty() || index.size() > 6 || index.find_first_not_of("0123456789") != std::string::npos)
      fail(f, ": tensor '", t.name, "': expected direction.N with N a layer number");
    const int layer = std::stoi(index);
    if (layer == 0) fail(f, ": tensor 'direction.0': llama.cpp never steers block 0's output and refuses layer 0");
    if (t.type->id != 0 || t.ne.size() != 1)
      fail(f, ": tensor '", t.name, "' is ", t.type->name, " with ", t.ne.size(), " dimensions, expected a 1-D F32 vector");
    const auto n = std::int64_t(t.ne[0]);
    if (n == 0) fail(f, ": tensor '", t.name, "' is empty");  // (fuzz finding: n_embd 0 then 4 slipped through)
    if (cv.n_embd == 0) cv.n_embd = n;
    if (n != cv.n_embd) fail(f, ": tensor '", t.name, "' has ", n, " elements, the others ", cv.n_embd);
    const Tensor d = g.get(t.name);
    const float* p = d.data<float>();
    cv.directions[layer].assign(p, p + n);
  }
  if (cv.directions.empty()) fail(f, ": no direction.N tensors: not a control vector");
  return cv;
}

inline void write_control_vector(const std::filesystem::path& file, const ControlVector& cv) {
  FLAS_CHECK(!cv.directions.empty(), file.string(), ": a control vector needs at least one direction");
  io::GgufWriter w;
  w.set("general.architecture", "controlvector");
  w.set("controlvector.model_hint", io::gguf::Scalar(cv.model_hint));
  w.set("controlvector.layer_count", std::uint32_t(cv.directions.size()));
  for (const auto& [layer, d] : cv.directions) {
    FLAS_CHECK(layer >= 1, file.string(), ": layer ", layer, " cannot be written: llama.cpp steers the outputs of blocks 1 and up");
    FLAS_CHECK(std::int64_t(d.size()) == cv.n_embd, file.string(), ": direction of layer ", layer, " has ", d.size(),
               " elements, expected ", cv.n_embd);
    Tensor t = Tensor::empty({cv.n_embd}, DType::F32);
    std::copy(d.begin(), d.end(), t.data<float>());
    w.add_tensor("direction." + std::to_string(layer), std::move(t));
  }
  w.write(file);
}

// One file with its scale, as llama.cpp's --control-vector-scaled FILE SCALE (--control-vector: 1).
struct ScaledControlVector {
  std::filesystem::path file;
  float scale = 1.0f;
};

// "FILE" or "FILE:SCALE" (the last colon, when what follows it is a number).
inline ScaledControlVector parse_scaled_control_vector(const std::string& arg) {
  const auto colon = arg.rfind(':');
  if (colon != std::string::npos && colon + 1 < arg.size()) {
    const std::string tail = arg.substr(colon + 1);
    char* end = nullptr;
    const float s = std::strtof(tail.c_str(), &end);
    if (end && *end == '\0') {
      FLAS_CHECK(std::isfinite(s), "--control-vector ", arg, ": the scale must be a finite number");
      return {arg.substr(0, colon), s};
    }
  }
  return {arg, 1.0f};
}

// The sum of the files' scaled directions, as llama.cpp forms it (every layer any file has).
inline ControlVector sum_control_vectors(const std::vector<ScaledControlVector>& files) {
  FLAS_CHECK(!files.empty(), "control vectors: no file given");
  ControlVector out;
  for (const auto& f : files) {
    const ControlVector cv = read_control_vector(f.file);
    if (out.n_embd == 0) out.n_embd = cv.n_embd, out.model_hint = cv.model_hint;
    FLAS_CHECK(cv.n_embd == out.n_embd, f.file.string(), ": directions of ", cv.n_embd, " elements, earlier files have ",
               out.n_embd);
    for (const auto& [layer, d] : cv.directions) {
      auto& acc = out.directions[layer];
      acc.resize(std::size_t(out.n_embd), 0.0f);
      for (std::size_t j = 0; j < d.size(); ++j) acc[j] += f.scale * d[j];
    }
  }
  return out;
}

}  // namespace flas::interop

namespace flas::interop {

// A steering vector d at flas layer L (the output of block L) as a control vector with scale·d at
// direction.L: what flas steering with h ← h + T·d does at T = scale, llama.cpp does at scale 1.
inline ControlVector control_vector_at(int layer, std::span<const float> d, float scale, std::string model_hint) {
  FLAS_CHECK(layer >= 1, "control vector: layer ", layer, ": llama.cpp steers the outputs of blocks 1 and up");
  FLAS_CHECK(!d.empty(), "control vector: an empty direction");
  ControlVector cv;
  cv.model_hint = std::move(model_hint);
  cv.n_embd = std::int64_t(d.size());
  auto& out = cv.directions[layer];
  for (float x : d) out.push_back(scale * x);
  return cv;
}

}  // namespace flas::interop
