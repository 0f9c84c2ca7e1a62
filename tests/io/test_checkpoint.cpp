// Checkpoints: a single model.safetensors or HF shards with model.safetensors.index.json, opened from
// the folder, the file or the index; a broken index is refused naming the index file.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/io/checkpoint.hpp"
#include "io_test_helpers.hpp"

using flas::DType;
using flas::Shape;
using flas::Tensor;
using flas::io::Checkpoint;
using flas::io::save_safetensors;
using namespace flas::test_io;

namespace {

Tensor filled(const Shape& shape, float value) {
  Tensor t = Tensor::empty(shape, DType::F32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = value + float(i);
  return t;
}

// Two shards and their index in `dir`; `weight_map` overrides the index's map when given.
void write_sharded(const TempDir& dir, const nlohmann::json& weight_map = nullptr) {
  save_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", filled({2, 3}, 1)}, {"b", filled({4}, 10)}});
  save_safetensors(dir / "model-00002-of-00002.safetensors", {{"c", filled({5}, 100)}});
  nlohmann::json index = {{"metadata", {{"total_size", 60}}},
                          {"weight_map",
                           weight_map.is_null() ? nlohmann::json{{"a", "model-00001-of-00002.safetensors"},
                                                                 {"b", "model-00001-of-00002.safetensors"},
                                                                 {"c", "model-00002-of-00002.safetensors"}}
                                                : weight_map}};
  write_bytes(dir / "model.safetensors.index.json", index.dump(2));
}

}  // namespace

TEST_CASE("checkpoint: sharded, opened from the folder or the index") {
  TempDir dir;
  write_sharded(dir);
  for (const auto& path : {dir.path(), dir / "model.safetensors.index.json"}) {
    CAPTURE(path.string());
    const auto ckpt = Checkpoint::open(path);
    CHECK(ckpt.is_sharded());
    CHECK(ckpt.shard_count() == 2);
    CHECK(ckpt.path() == dir / "model.safetensors.index.json");
    CHECK(ckpt.names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(ckpt.contains("c"));
    CHECK_FALSE(ckpt.contains("d"));
    CHECK(ckpt.shape("a") == Shape{2, 3});
    CHECK(ckpt.dtype("c") == DType::F32);
    CHECK(ckpt.get("a").data<float>()[5] == 6.0f);
    CHECK(ckpt.get("c", DType::F32, Shape{5}).data<float>()[4] == 104.0f);
    CHECK(ckpt.file_of("c").path().filename() == "model-00002-of-00002.safetensors");
    CHECK_FLAS_ERROR(ckpt.get("d"), "model.safetensors.index.json", "no tensor named 'd'", "3 tensors");
    CHECK_FLAS_ERROR(ckpt.get("a", DType::F32, Shape{3, 2}), "model-00001-of-00002.safetensors", "'a'",
                     "expected F32 [3, 2]");
  }
}

TEST_CASE("checkpoint: a broken index is refused naming the index") {
  TempDir dir;
  SUBCASE("a shard that does not exist") {
    write_sharded(dir, {{"a", "model-00001-of-00002.safetensors"}, {"z", "model-00009-of-00009.safetensors"}});
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "'z'",
                     "model-00009-of-00009.safetensors", "does not exist");
  }
  SUBCASE("a tensor absent from its shard") {
    write_sharded(dir, {{"a", "model-00001-of-00002.safetensors"}, {"c", "model-00001-of-00002.safetensors"}});
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "tensor 'c'",
                     "model-00001-of-00002.safetensors", "no such tensor");
  }
  SUBCASE("a shard outside the folder") {
    write_sharded(dir, {{"a", "../elsewhere.safetensors"}});
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "../elsewhere.safetensors",
                     "not a file name inside");
  }
  SUBCASE("a shard that is not safetensors") {
    write_sharded(dir);
    write_bytes(dir / "model-00002-of-00002.safetensors", "garbage");
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "model-00002-of-00002.safetensors",
                     "too short");
  }
  SUBCASE("not JSON, no weight_map, wrong types") {
    write_bytes(dir / "model.safetensors.index.json", "{ nope");
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "not valid JSON");
    write_bytes(dir / "model.safetensors.index.json", R"({"metadata": {}})");
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "weight_map");
    write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {}})");
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "non-empty");
    write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
    CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), "model.safetensors.index.json", "'a'", "shard file name");
  }
}

TEST_CASE("checkpoint: single file, from the folder or the file") {
  const auto folder = fs::path(FLAS_PROJECT_FIXTURES) / "gemma2-tiny";
  for (const auto& path : {folder, folder / "model.safetensors"}) {
    const auto ckpt = Checkpoint::open(path);
    CHECK_FALSE(ckpt.is_sharded());
    CHECK(ckpt.shard_count() == 1);
    CHECK(ckpt.size() == 46);
    CHECK(ckpt.get("model.embed_tokens.weight", DType::F32, Shape{512, 64}).numel() == 512 * 64);
    CHECK(ckpt.contains("model.layers.3.post_feedforward_layernorm.weight"));
    CHECK_FLAS_ERROR(ckpt.get("lm_head.weight"), "model.safetensors", "no tensor named 'lm_head.weight'");
  }
  const auto chat = Checkpoint::open(fs::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat");
  CHECK(chat.dtype("model.embed_tokens.weight") == DType::BF16);
  CHECK(chat.shape("model.embed_tokens.weight") == Shape{4096, 256});
}

TEST_CASE("checkpoint: folders and paths that hold no checkpoint") {
  TempDir dir;
  CHECK_FLAS_ERROR(Checkpoint::open(dir.path()), dir.path().string(), "neither model.safetensors nor");
  CHECK_FLAS_ERROR(Checkpoint::open(dir / "missing"), "missing", "no such checkpoint");
}
