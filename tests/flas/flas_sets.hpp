#pragma once
// A FLAS fixture set: flas_<tag>_fixtures.safetensors (+ .json: layer, blocks), its flows
// flas_<tag>_flow.safetensors and flas_<tag>_flow_noselfattn.safetensors, optional
// flas_<tag>_steps.safetensors, and the base model folder gemma2-<tag>/.
#include <fstream>
#include <nlohmann/json.hpp>

#include "flas/field/flas_flow.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/models/gemma2/model.hpp"
#include "support/fixtures.hpp"

namespace flas::testing {

struct FlasSet {
  FixtureSet set;
  int layer = 0, blocks = 0;
  std::filesystem::path base_dir, flow, flow_noselfattn, steps;

  static FlasSet from(const FixtureSet& s) {
    FlasSet f;
    f.set = s;
    std::ifstream in(s.folder / ("flas_" + s.tag + "_fixtures.json"));
    const auto j = nlohmann::json::parse(in);
    f.layer = j.at("layer").get<int>();
    f.blocks = j.at("num_blocks").get<int>();
    f.base_dir = s.folder / ("gemma2-" + s.tag);
    f.flow = s.folder / ("flas_" + s.tag + "_flow.safetensors");
    f.flow_noselfattn = s.folder / ("flas_" + s.tag + "_flow_noselfattn.safetensors");
    f.steps = s.folder / ("flas_" + s.tag + "_steps.safetensors");
    return f;
  }
  static std::vector<FlasSet> all() {
    std::vector<FlasSet> out;
    for (const auto& s : discover("flas_", "_fixtures.safetensors")) out.push_back(from(s));
    return out;
  }
};

template <class B>
field::FlasFlow<B> load_flow(const gemma2::Model<B>& base, const std::filesystem::path& file) {
  return field::FlasFlow<B>(base.config(), base.inv_freq(), field::load_flow_weights(file, base.config()));
}

// Rows of `t` picked by index: out[i] = t[rows[i]].
inline Tensor pick_rows(const Tensor& t, const std::vector<std::int64_t>& rows) {
  Shape s = t.shape();
  s[0] = std::int64_t(rows.size());
  Tensor out = Tensor::empty(s, t.dtype());
  for (std::size_t i = 0; i < rows.size(); ++i) std::memcpy(out[std::int64_t(i)].raw(), t[rows[i]].raw(), t.row_bytes());
  return out;
}

inline std::vector<float> floats(const Tensor& t) {
  std::vector<float> v(std::size_t(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) v[std::size_t(i)] = float(element_as_double(t, i));
  return v;
}

}  // namespace flas::testing
