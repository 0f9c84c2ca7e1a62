#pragma once
// The sharded-checkpoint index (model.safetensors.index.json): its weight_map against two real shards
// beside it. Shard names that reach outside the folder must be refused; every tensor an accepted
// index lists must be readable from its shard.
#include <string_view>
#include <cstdint>
#include "flas/io/checkpoint.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

namespace detail {
// Two small shards, written once: model-00001-of-00002.safetensors holds a, b; the other holds c.
inline void write_shards() {
  static const bool done = [] {
    const auto dir = fuzz::scratch_dir() / "ckpt";
    std::filesystem::create_directories(dir);
    auto filled = [](Shape s, float v) {
      Tensor t = Tensor::empty(s, DType::F32);
      for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v + float(i);
      return t;
    };
    io::save_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", filled({2, 3}, 1)}, {"b", filled({4}, 10)}});
    io::save_safetensors(dir / "model-00002-of-00002.safetensors", {{"c", filled({1, 2}, 20)}});
    return true;
  }();
  (void)done;
}
}  // namespace detail

inline void feed_checkpoint_index(std::string_view input) {
  detail::write_shards();
  const auto index = fuzz::scratch_dir() / "ckpt" / "model.safetensors.index.json";
  fuzz::write_file(index, input);
  fuzz::refuses_cleanly([&] {
    const auto c = io::Checkpoint::open(index);
    for (const auto& name : c.names()) {
      const Tensor t = c.get(name);
      if (t.numel() > 0 && t.data<float>()[0] < 0) fuzz::finding("a shard tensor changed");
    }
  });
}

}  // namespace flas::fuzz
