#pragma once
// Loading and saving FLAS flows with the released checkpoints' key names, f32 or bf16, plus a small
// JSON beside the weights (layer, blocks, switches, Euler steps, default flow time). Which parts a flow
// has (time MLP, self-attention, ...) and how many blocks are read off the keys, as the reference does;
// a key we do not know, a missing key or a shape that does not fit the base model is refused.
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "flas/field/flow_weights.hpp"
#include "flas/io/atomic_write.hpp"
#include "flas/io/safetensors.hpp"

namespace flas::field {

struct FlowMeta {
  int layer = -1;            // steering site: the output of this decoder layer
  int steps = 3;             // Euler steps N
  float flowtime = 2.0f;     // default T
  std::string solver = "euler";
  int concept_layers = 2;    // base layers in the concept encoder
};

// <dir>/<stem>.json beside <dir>/<stem>.safetensors.
inline std::filesystem::path flow_meta_path(const std::filesystem::path& weights) {
  auto p = weights;
  return p.replace_extension(".json");
}

inline FlowMeta read_flow_meta(const std::filesystem::path& json_file, FlowMeta m = {}) {
  std::ifstream in(json_file);
  FLAS_CHECK(in, json_file.string(), ": cannot open the flow's JSON");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(json_file.string(), ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(json_file.string(), ": a flow's JSON must be an object, found ", j.type_name());
  // Each key's JSON type must be the field's: nlohmann would convert 1e300 to int (undefined
  // behaviour) or a negative number to a huge one.
  auto get = [&](const char* key, auto& out) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    using T = std::remove_reference_t<decltype(out)>;
    bool fits = false;
    if constexpr (std::is_same_v<T, std::string>) {
      fits = v.is_string();
    } else if constexpr (std::is_integral_v<T>) {
      fits = v.is_number_integer() &&
             (v.is_number_unsigned() ? v.template get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<T>::max())
                                     : v.template get<std::int64_t>() >= std::numeric_limits<T>::min() &&
                                           v.template get<std::int64_t>() <= std::numeric_limits<T>::max());
    } else {
      fits = v.is_number() && std::isfinite(v.template get<double>()) &&
             std::abs(v.template get<double>()) <= double(std::numeric_limits<T>::max());
    }
    if (!fits)
      fail(json_file.string(), ": key '", key, "' must be ",
           std::is_same_v<T, std::string> ? "a string" : std::is_integral_v<T> ? "an integer (int32)" : "a finite number",
           ", found ", v.type_name(), " ", v.dump());
    v.get_to(out);
  };
  get("layer", m.layer);
  get("steps", m.steps);
  get("n_steps", m.steps);
  get("flowtime", m.flowtime);
  get("solver", m.solver);
  get("concept_layers", m.concept_layers);
  return m;
}

inline FlowWeights load_flow_weights(const std::filesystem::path& file, const gemma2::Config& c) {
  const auto f = io::SafeTensorsFile::open(file);
  const std::string where = file.string();
  FlowWeights w;
  w.switches.time = f.contains("time_embed.mlp.0.weight");
  w.switches.cross_attn = f.contains("blocks.0.cross_attn.q_proj.weight");
  w.switches.self_attn = f.contains("blocks.0.self_attn.q_proj.weight");
  w.switches.mlp = f.contains("blocks.0.gate_proj.weight");
  w.switches.pooled = f.contains("blocks.0.concept_proj.weight");
  FLAS_CHECK(!(w.switches.pooled && w.switches.cross_attn), where,
             ": has both cross-attention and pooled concept conditioning; a flow uses one");
  std::set<int> block_ids;
  const std::regex block_re(R"(^blocks\.(\d+)\.)");
  for (const auto& name : f.names()) {
    std::smatch m;
    if (!std::regex_search(name, m, block_re)) continue;
    // Block numbers index the block list: one beyond the tensor count cannot be a real flow's.
    const std::string digits = m[1].str();
    std::size_t id = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    FLAS_CHECK(err == std::errc() && end == digits.data() + digits.size() && id < f.size(), where, ": tensor '", name,
               "' has block number ", digits, ", but the file has only ", f.size(), " tensors");
    block_ids.insert(int(id));
  }
  FLAS_CHECK(!block_ids.empty(), where, ": no 'blocks.N.*' tensors: not a FLAS flow checkpoint");
  FLAS_CHECK(*block_ids.rbegin() + 1 == int(block_ids.size()), where, ": block numbers are not 0..",
             block_ids.size() - 1);
  w.blocks.resize(block_ids.size());
  std::set<std::string> used;
  for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) {
    const Shape want = expected_flow_shape(name, c);
    FLAS_CHECK(f.contains(name), where, ": missing tensor '", name, "' (expected shape ", want, ")");
    const Shape got = f.shape(name);
    FLAS_CHECK(got == want, where, ": tensor '", name, "' has shape ", got, " but the base model (hidden ",
               c.hidden_size, ", heads ", c.num_attention_heads, "/", c.num_key_value_heads, ", head_dim ",
               c.head_dim, ") needs ", want);
    const DType dt = f.dtype(name);
    FLAS_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16, where, ": tensor '", name,
               "' has dtype ", dtype_name(dt), ", expected F32 or BF16");
    t = f.get(name);
    if (dt == DType::F16) t = convert(t, DType::F32);
    used.insert(name);
  });
  for (const auto& name : f.names())
    FLAS_CHECK(used.count(name), where, ": unexpected tensor '", name,
               "' (not a FLAS flow parameter, or a block with parts the others lack)");
  return w;
}

inline void save_flow(const std::filesystem::path& file, FlowWeights& w, const FlowMeta& meta) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) { tensors.emplace_back(name, t); });
  io::save_safetensors(file, tensors, {{"format", "pt"}});
  nlohmann::json j{{"layer", meta.layer},
                   {"blocks", w.blocks.size()},
                   {"steps", meta.steps},
                   {"flowtime", meta.flowtime},
                   {"solver", meta.solver},
                   {"concept_layers", meta.concept_layers},
                   {"time_conditioned", w.switches.time},
                   {"cross_attn", w.switches.cross_attn},
                   {"self_attn", w.switches.self_attn},
                   {"mlp", w.switches.mlp},
                   {"conditioning", w.switches.cross_attn ? "cross_attention" : w.switches.pooled ? "pooled_additive" : "none"}};
  const std::string text = j.dump(1) + "\n";
  io::write_file_atomically(flow_meta_path(file), {std::as_bytes(std::span<const char>(text.data(), text.size()))});
}

}  // namespace flas::field
