#pragma once
// The Gemma-2 hyper-parameters, read from an HF `config.json` (transformers 4 or 5 spelling). Reading is
// strict: a key flas would interpret differently from transformers (another activation, a scaled
// RoPE, attention biases) is refused with the key, the value found and the value expected, because
// such a model would load fine and then compute something subtly wrong.
//
// Missing optional keys take the transformers Gemma2Config defaults, except head_dim (hidden / heads)
// and query_pre_attn_scalar (head_dim), which follow from the other sizes. A null soft-cap means none.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"

namespace flas::gemma2 {

enum class LayerType { sliding_attention, full_attention };

constexpr std::string_view layer_type_name(LayerType t) {
  return t == LayerType::sliding_attention ? "sliding_attention" : "full_attention";
}

namespace detail {

// Typed access to a config object; every error names the source file and the key.
class ConfigFields {
 public:
  ConfigFields(const nlohmann::json& j, std::string_view source) : j_(j), source_(source) {}

  bool present(const char* key) const { return j_.contains(key); }
  bool given(const char* key) const { return present(key) && !j_[key].is_null(); }  // present, not null

  std::int64_t integer(const char* key) const { return as_integer(key, required(key)); }
  std::int64_t integer(const char* key, std::int64_t fallback) const {
    return given(key) ? as_integer(key, j_[key]) : fallback;
  }
  double number(const char* key) const { return as_number(key, required(key)); }
  double number(const char* key, double fallback) const { return given(key) ? as_number(key, j_[key]) : fallback; }
  std::string string(const char* key) const { return as_string(key, required(key)); }
  bool boolean(const char* key, bool fallback) const {
    if (!given(key)) return fallback;
    if (!j_[key].is_boolean()) fail_type(key, "a boolean", j_[key]);
    return j_[key].get<bool>();
  }

  const nlohmann::json& required(const char* key) const {
    if (!present(key)) fail(source_, ": missing required key '", key, "'");
    return j_[key];
  }
  std::int64_t as_integer(std::string_view key, const nlohmann::json& v) const {
    if (!v.is_number_integer()) fail_type(key, "an integer", v);
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(INT64_MAX)) fail_type(key, "an int64", v);
    return v.get<std::int64_t>();
  }
  double as_number(std::string_view key, const nlohmann::json& v) const {
    if (!v.is_number()) fail_type(key, "a number", v);
    return v.get<double>();
  }
  std::string as_string(std::string_view key, const nlohmann::json& v) const {
    if (!v.is_string()) fail_type(key, "a string", v);
    return v.get<std::string>();
  }
  [[noreturn]] void fail_type(std::string_view key, std::string_view expected, const nlohmann::json& v) const {
    fail(source_, ": key '", key, "' must be ", expected, ", found ", v.type_name(), " ", v.dump());
  }
  template <class... Parts>
  [[noreturn]] void fail_key(std::string_view key, const Parts&... parts) const {
    fail(source_, ": key '", key, "' ", parts...);
  }
  const std::string& source() const { return source_; }

 private:
  const nlohmann::json& j_;
  std::string source_;
};

}  // namespace detail

struct Config {
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double query_pre_attn_scalar = 0;   // scores are scaled by query_pre_attn_scalar^-1/2
  double attn_logit_softcapping = 0;  // 0 = none
  double final_logit_softcapping = 0; // 0 = none
  std::int64_t sliding_window = 4096;
  std::vector<LayerType> layer_types;
  std::int64_t max_position_embeddings = 8192;
  std::int64_t bos_token_id = 2;  // -1 = none
  std::int64_t pad_token_id = 0;  // -1 = none
  std::vector<std::int64_t> eos_token_ids{1};
  bool tie_word_embeddings = true;
  DType dtype = DType::F32;  // the dtype the checkpoint was saved in

  bool is_sliding(int layer) const {
    FLAS_CHECK(layer >= 0 && std::size_t(layer) < layer_types.size(), "gemma2::Config: layer ", layer,
               " out of range [0, ", layer_types.size(), ")");
    return layer_types[std::size_t(layer)] == LayerType::sliding_attention;
  }
  bool is_eos(std::int64_t id) const {
    return std::find(eos_token_ids.begin(), eos_token_ids.end(), id) != eos_token_ids.end();
  }

  // Bounds on sizes that only corruption exceeds: every shape product flas forms (heads · head_dim,
  // vocab · hidden, ...) then fits an int64, and no table is sized by a runaway layer count.
  static constexpr std::int64_t max_size = std::int64_t(1) << 31;
  static constexpr std::int64_t max_layers = 1 << 16;

  static Config from_json(const nlohmann::json& j, std::string_view source_name) {
    if (!j.is_object()) fail(source_name, ": a model config must be a JSON object, found ", j.type_name());
    const detail::ConfigFields f(j, source_name);
    Config c;
    const std::string model_type = f.string("model_type");
    if (model_type != "gemma2")
      f.fail_key("model_type", "is '", model_type, "', expected 'gemma2' (flas implements Gemma-2 only)");

    c.vocab_size = f.integer("vocab_size");
    c.hidden_size = f.integer("hidden_size");
    c.intermediate_size = f.integer("intermediate_size");
    c.num_hidden_layers = f.integer("num_hidden_layers");
    c.num_attention_heads = f.integer("num_attention_heads");
    c.num_key_value_heads = f.integer("num_key_value_heads");
    for (const auto& [key, v] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                                 {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
                                 {"num_attention_heads", c.num_attention_heads},
                                 {"num_key_value_heads", c.num_key_value_heads}})
      if (v <= 0) f.fail_key(key, "must be positive, found ", v);
      else if (v > max_size) f.fail_key(key, "is ", v, ", more than the ", max_size, " flas supports (a corrupt config?)");
    // Per-layer tables are sized by the layer count before any weight is read.
    if (c.num_hidden_layers > max_layers)
      f.fail_key("num_hidden_layers", "is ", c.num_hidden_layers, ", more than the ", max_layers, " flas supports (a corrupt config?)");
    if (c.num_attention_heads % c.num_key_value_heads != 0)
      fail(source_name, ": num_attention_heads (", c.num_attention_heads, ") must be a multiple of num_key_value_heads (",
           c.num_key_value_heads, ") for grouped-query attention");
    if (f.given("head_dim")) {
      c.head_dim = f.integer("head_dim");
      if (c.head_dim <= 0 || c.head_dim % 2 != 0) f.fail_key("head_dim", "must be positive and even (RoPE pairs), found ", c.head_dim);
      if (c.head_dim > max_size) f.fail_key("head_dim", "is ", c.head_dim, ", more than the ", max_size, " flas supports (a corrupt config?)");
    } else {
      // Real Gemma-2 configs state head_dim (2B: 2304 / 8 heads != 256); only derive it when it divides.
      if (c.hidden_size % c.num_attention_heads != 0)
        fail(source_name, ": no 'head_dim', and hidden_size (", c.hidden_size, ") is not a multiple of num_attention_heads (",
             c.num_attention_heads, ")");
      c.head_dim = c.hidden_size / c.num_attention_heads;
      if (c.head_dim % 2 != 0)  // found by fuzz_gemma2_config: an odd derived size reached RoPE
        fail(source_name, ": no 'head_dim', and hidden_size / num_attention_heads = ", c.hidden_size, " / ",
             c.num_attention_heads, " = ", c.head_dim, " is odd (RoPE rotates pairs): give an even head_dim");
    }
    c.query_pre_attn_scalar = f.number("query_pre_attn_scalar", double(c.head_dim));
    if (!(c.query_pre_attn_scalar > 0)) f.fail_key("query_pre_attn_scalar", "must be positive, found ", c.query_pre_attn_scalar);
    c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
    if (!(c.rms_norm_eps > 0)) f.fail_key("rms_norm_eps", "must be positive, found ", c.rms_norm_eps);
    c.attn_logit_softcapping = read_softcap(f, "attn_logit_softcapping", 50.0);
    c.final_logit_softcapping = read_softcap(f, "final_logit_softcapping", 30.0);
    c.sliding_window = f.integer("sliding_window", 4096);
    if (c.sliding_window <= 0) f.fail_key("sliding_window", "must be positive, found ", c.sliding_window);
    c.max_position_embeddings = f.integer("max_position_embeddings", 8192);
    if (c.max_position_embeddings <= 0)
      f.fail_key("max_position_embeddings", "must be positive, found ", c.max_position_embeddings);
    c.rope_theta = read_rope_theta(j, f);
    c.layer_types = read_layer_types(j, f, c.num_hidden_layers);
    c.bos_token_id = read_token_id(f, "bos_token_id", 2, c.vocab_size);
    c.pad_token_id = read_token_id(f, "pad_token_id", 0, c.vocab_size);
    c.eos_token_ids = read_eos(j, f, c.vocab_size);
    c.tie_word_embeddings = f.boolean("tie_word_embeddings", true);
    c.dtype = read_dtype(f);
    check_unsupported(f);
    return c;
  }

  // `config_json` may also be the model folder (then <folder>/config.json is read).
  static Config load(const std::filesystem::path& config_json) {
    const auto file = std::filesystem::is_directory(config_json) ? config_json / "config.json" : config_json;
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(file.string(), ": cannot open the model config");
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      fail(file.string(), ": not valid JSON (", e.what(), ")");
    }
    return from_json(j, file.string());
  }

 private:
  static double read_softcap(const detail::ConfigFields& f, const char* key, double fallback) {
    if (!f.present(key)) return fallback;
    if (!f.given(key)) return 0;  // explicit null: no soft-capping
    const double cap = f.number(key);
    if (cap < 0) f.fail_key(key, "must be >= 0 (0 or null = none), found ", cap);
    return cap;
  }

  // transformers 5: rope_parameters {rope_type, rope_theta}; older files: top-level rope_theta and an
  // optional rope_scaling. Only unscaled ("default") RoPE is Gemma-2's.
  static double read_rope_theta(const nlohmann::json& j, const detail::ConfigFields& f) {
    std::optional<double> theta;
    if (f.given("rope_theta")) theta = f.number("rope_theta");
    for (const char* key : {"rope_parameters", "rope_scaling"}) {
      if (!f.given(key)) continue;
      const auto& p = j[key];
      if (!p.is_object()) f.fail_type(key, "an object", p);
      for (const char* type_key : {"rope_type", "type"}) {
        if (!p.contains(type_key)) continue;
        const std::string type = f.as_string(flas::detail::concat(key, ".", type_key), p[type_key]);
        if (type != "default")
          f.fail_key(flas::detail::concat(key, ".", type_key), "is '", type, "', expected 'default' (Gemma-2 uses unscaled RoPE)");
      }
      if (!p.contains("rope_theta")) continue;
      const double inner = f.as_number(flas::detail::concat(key, ".rope_theta"), p["rope_theta"]);
      if (theta && *theta != inner)
        f.fail_key(flas::detail::concat(key, ".rope_theta"), "is ", inner, " but top-level rope_theta is ", *theta);
      theta = inner;
    }
    const double value = theta.value_or(10000.0);
    if (!(value > 0)) f.fail_key("rope_theta", "must be positive, found ", value);
    return value;
  }

  // HF Gemma-2 without layer_types alternates, starting with a sliding layer.
  static std::vector<LayerType> read_layer_types(const nlohmann::json& j, const detail::ConfigFields& f,
                                                 std::int64_t layers) {
    std::vector<LayerType> out;
    if (!f.given("layer_types")) {
      for (std::int64_t i = 0; i < layers; ++i)
        out.push_back(i % 2 == 0 ? LayerType::sliding_attention : LayerType::full_attention);
      return out;
    }
    const auto& a = j["layer_types"];
    if (!a.is_array()) f.fail_type("layer_types", "an array", a);
    if (std::int64_t(a.size()) != layers)
      f.fail_key("layer_types", "has ", a.size(), " entries, but num_hidden_layers is ", layers);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string key = flas::detail::concat("layer_types[", i, "]");
      const std::string type = f.as_string(key, a[i]);
      if (type == "sliding_attention") out.push_back(LayerType::sliding_attention);
      else if (type == "full_attention") out.push_back(LayerType::full_attention);
      else f.fail_key(key, "is '", type, "', expected 'sliding_attention' or 'full_attention'");
    }
    return out;
  }

  static std::int64_t read_token_id(const detail::ConfigFields& f, const char* key, std::int64_t fallback,
                                    std::int64_t vocab) {
    if (!f.present(key)) return fallback;
    if (!f.given(key)) return -1;
    const std::int64_t id = f.integer(key);
    if (id < 0 || id >= vocab) f.fail_key(key, "is ", id, ", outside the vocabulary [0, ", vocab, ")");
    return id;
  }

  static std::vector<std::int64_t> read_eos(const nlohmann::json& j, const detail::ConfigFields& f,
                                            std::int64_t vocab) {
    if (!f.present("eos_token_id")) return {1};
    if (!f.given("eos_token_id")) return {};
    const auto& v = j["eos_token_id"];
    std::vector<std::int64_t> ids;
    if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i) ids.push_back(f.as_integer(flas::detail::concat("eos_token_id[", i, "]"), v[i]));
    } else if (v.is_number_integer()) {
      ids.push_back(f.integer("eos_token_id"));
    } else {
      f.fail_type("eos_token_id", "an integer or a list of integers", v);
    }
    for (std::int64_t id : ids)
      if (id < 0 || id >= vocab) f.fail_key("eos_token_id", "holds ", id, ", outside the vocabulary [0, ", vocab, ")");
    return ids;
  }

  static DType read_dtype(const detail::ConfigFields& f) {
    const char* key = f.given("dtype") ? "dtype" : "torch_dtype";
    if (!f.given(key)) return DType::F32;
    const std::string name = f.string(key);
    if (name == "float32") return DType::F32;
    if (name == "bfloat16") return DType::BF16;
    if (name == "float16") return DType::F16;
    f.fail_key(key, "is '", name, "', expected 'float32', 'bfloat16' or 'float16'");
  }

  // Keys whose other values would make flas compute a different model than transformers does.
  static void check_unsupported(const detail::ConfigFields& f) {
    const char* act_key = f.given("hidden_activation") ? "hidden_activation" : "hidden_act";
    if (f.given(act_key)) {
      const std::string act = f.string(act_key);
      if (act != "gelu_pytorch_tanh")
        f.fail_key(act_key, "is '", act, "', expected 'gelu_pytorch_tanh' (flas implements only the tanh GELU that "
                   "Gemma-2 uses; an exact-erf GELU would be silently wrong)");
    }
    if (f.boolean("attention_bias", false))
      f.fail_key("attention_bias", "is true, expected false (Gemma-2 attention has no biases)");
    if (f.boolean("use_bidirectional_attention", false))
      f.fail_key("use_bidirectional_attention", "is true, expected false or null (Gemma-2 attention is causal)");
  }
};

}  // namespace flas::gemma2
