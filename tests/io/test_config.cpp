// Gemma-2 config.json: the shipped configs parse to the right values; the transformers-4 spelling
// (top-level rope_theta, torch_dtype) works; anything flas would compute differently is refused naming
// the file, the key and the value.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/models/gemma2/config.hpp"
#include "io_test_helpers.hpp"

using flas::DType;
using flas::gemma2::Config;
using flas::gemma2::LayerType;
using namespace flas::test_io;

namespace {

const fs::path tiny_config = fs::path(FLAS_PROJECT_FIXTURES) / "gemma2-tiny" / "config.json";
const fs::path chat_config = fs::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat" / "config.json";

nlohmann::json tiny_json() { return nlohmann::json::parse(read_bytes(tiny_config)); }

constexpr auto S = LayerType::sliding_attention;
constexpr auto F = LayerType::full_attention;

}  // namespace

TEST_CASE("config: the gemma2-tiny fixture") {
  const Config c = Config::load(tiny_config);
  CHECK(c.vocab_size == 512);
  CHECK(c.hidden_size == 64);
  CHECK(c.intermediate_size == 160);
  CHECK(c.num_hidden_layers == 4);
  CHECK(c.num_attention_heads == 4);
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.head_dim == 16);
  CHECK(c.rms_norm_eps == doctest::Approx(1e-6));
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.query_pre_attn_scalar == 16.0);
  CHECK(c.attn_logit_softcapping == 50.0);
  CHECK(c.final_logit_softcapping == 30.0);
  CHECK(c.sliding_window == 8);
  CHECK(c.layer_types == std::vector<LayerType>{S, F, S, F});
  CHECK(c.is_sliding(0));
  CHECK_FALSE(c.is_sliding(3));
  CHECK_FLAS_ERROR(c.is_sliding(4), "layer 4", "[0, 4)");
  CHECK(c.max_position_embeddings == 256);
  CHECK(c.bos_token_id == 2);
  CHECK(c.pad_token_id == 0);
  CHECK(c.eos_token_ids == std::vector<std::int64_t>{1});
  CHECK(c.tie_word_embeddings);
  CHECK(c.dtype == DType::F32);
}

TEST_CASE("config: the bundled chat model (folder form, eos list, bf16)") {
  const Config c = Config::load(chat_config.parent_path());
  CHECK(c.vocab_size == 4096);
  CHECK(c.hidden_size == 256);
  CHECK(c.num_hidden_layers == 6);
  CHECK(c.head_dim == 64);
  CHECK(c.query_pre_attn_scalar == 64.0);
  CHECK(c.sliding_window == 128);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.eos_token_ids == std::vector<std::int64_t>{1, 5});
  CHECK(c.is_eos(5));
  CHECK_FALSE(c.is_eos(2));
  CHECK(c.layer_types == std::vector<LayerType>{S, F, S, F, S, F});
  CHECK(c.dtype == DType::BF16);
}

TEST_CASE("config: transformers-4 spelling and defaults") {
  auto j = tiny_json();
  j.erase("rope_parameters");
  j["rope_theta"] = 500000.0;
  j.erase("layer_types");
  j.erase("dtype");
  j["torch_dtype"] = "bfloat16";
  j.erase("head_dim");
  j.erase("query_pre_attn_scalar");
  j["final_logit_softcapping"] = nullptr;
  j["hidden_act"] = "gelu_pytorch_tanh";
  j["num_hidden_layers"] = 5;
  const Config c = Config::from_json(j, "v4.json");
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.layer_types == std::vector<LayerType>{S, F, S, F, S});  // HF: even layers slide
  CHECK(c.dtype == DType::BF16);
  CHECK(c.head_dim == 16);                 // hidden / heads
  CHECK(c.query_pre_attn_scalar == 16.0);  // head_dim
  CHECK(c.final_logit_softcapping == 0.0); // null = none
  CHECK(c.attn_logit_softcapping == 50.0);

  j.erase("rope_theta");
  CHECK(Config::from_json(j, "v4.json").rope_theta == 10000.0);  // neither form: the default
  j["rope_scaling"] = nullptr;
  CHECK(Config::from_json(j, "v4.json").rope_theta == 10000.0);
  j["eos_token_id"] = 7;
  CHECK(Config::from_json(j, "v4.json").eos_token_ids == std::vector<std::int64_t>{7});
}

TEST_CASE("config: refusals name the source, the key and the value") {
  auto j = tiny_json();
  SUBCASE("activation other than tanh GELU") {
    j["hidden_activation"] = "gelu";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'hidden_activation'", "'gelu'", "gelu_pytorch_tanh");
    j.erase("hidden_activation");
    j["hidden_act"] = "silu";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'hidden_act'", "'silu'", "gelu_pytorch_tanh");
  }
  SUBCASE("another model type") {
    j["model_type"] = "llama";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'model_type'", "'llama'", "'gemma2'");
  }
  SUBCASE("missing required keys") {
    j.erase("hidden_size");
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "missing required key 'hidden_size'");
    j = tiny_json();
    j.erase("model_type");
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "missing required key 'model_type'");
  }
  SUBCASE("wrong JSON types") {
    j["num_attention_heads"] = "4";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'num_attention_heads'", "an integer", "string");
    j = tiny_json();
    j["hidden_size"] = 64.5;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'hidden_size'", "an integer");
    j = tiny_json();
    j["rms_norm_eps"] = "small";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'rms_norm_eps'", "a number");
    j = tiny_json();
    j["tie_word_embeddings"] = 1;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'tie_word_embeddings'", "a boolean");
    j = tiny_json();
    j["eos_token_id"] = "1";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'eos_token_id'", "list of integers");
    CHECK_FLAS_ERROR(Config::from_json(nlohmann::json::array(), "cfg.json"), "cfg.json", "JSON object");
  }
  SUBCASE("layer_types") {
    j["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention"};
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'layer_types'", "3 entries", "num_hidden_layers is 4");
    j["layer_types"] = {"sliding_attention", "full_attention", "chunked_attention", "full_attention"};
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'layer_types[2]'", "'chunked_attention'");
  }
  SUBCASE("rope") {
    j["rope_parameters"]["rope_type"] = "linear";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'rope_parameters.rope_type'", "'linear'", "'default'");
    j = tiny_json();
    j["rope_theta"] = 20000.0;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "rope_parameters.rope_theta", "20000");
    j = tiny_json();
    j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'rope_scaling.type'", "'dynamic'");
  }
  SUBCASE("inconsistent sizes") {
    j["num_key_value_heads"] = 3;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "num_attention_heads (4)", "num_key_value_heads (3)");
    j = tiny_json();
    j.erase("head_dim");
    j["num_attention_heads"] = 3;
    j["num_key_value_heads"] = 1;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "hidden_size (64)", "num_attention_heads (3)");
    j = tiny_json();
    j["num_hidden_layers"] = 0;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'num_hidden_layers'", "positive");
    j = tiny_json();
    j["eos_token_id"] = {1, 9999};
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'eos_token_id'", "9999", "vocabulary");
  }
  SUBCASE("other semantics flas does not implement") {
    j["attention_bias"] = true;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'attention_bias'");
    j = tiny_json();
    j["use_bidirectional_attention"] = true;
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'use_bidirectional_attention'");
    j = tiny_json();
    j["dtype"] = "float8";
    CHECK_FLAS_ERROR(Config::from_json(j, "cfg.json"), "cfg.json", "'dtype'", "'float8'");
  }
}

TEST_CASE("config: files that are missing or not JSON") {
  TempDir dir;
  CHECK_FLAS_ERROR(Config::load(dir / "config.json"), "config.json", "cannot open");
  CHECK_FLAS_ERROR(Config::load(dir.path()), (dir / "config.json").string(), "cannot open");
  write_bytes(dir / "config.json", "{\"model_type\": ");
  CHECK_FLAS_ERROR(Config::load(dir / "config.json"), (dir / "config.json").string(), "not valid JSON");
}
