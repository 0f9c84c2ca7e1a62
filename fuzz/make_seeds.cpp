// Writes the seed inputs that need the project's own writers (safetensors, flows, training states,
// generation records) into <out>/<target>/. The committed corpora under fuzz/corpus/ were made with
// it; text seeds (configs, prompts, AxBench rows) are copies of files in the repository.
//   make_seeds fuzz/corpus
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "flas/eval/generation_record.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/interop/control_vector.hpp"
#include "flas/io/gguf_writer.hpp"
#include "flas/io/safetensors.hpp"
#include "fuzz_support.hpp"
#include "tiny_flow_config.hpp"
#include "toy_trainer.hpp"

using namespace flas;
namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Tensor ramp(Shape s, DType dt) {
  Tensor t = Tensor::empty(s, DType::F32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.25f * float(i + 1);
  return dt == DType::F32 ? t : convert(t, dt);
}

void safetensors_seeds(const fs::path& out) {
  const fs::path scratch = fuzz::scratch_dir() / "seed.safetensors";
  Tensor ids = Tensor::empty({3}, DType::I64);
  for (int i = 0; i < 3; ++i) ids.data<std::int64_t>()[i] = i * 7;
  io::save_safetensors(scratch, {{"weight", ramp({2, 3}, DType::F32)}, {"norm", ramp({4}, DType::BF16)},
                                 {"ids", ids}, {"empty", Tensor::empty({0, 2}, DType::F32)}},
                       {{"format", "pt"}});
  fuzz::write_file(out / "mixed_dtypes.safetensors", read_all(scratch));
  Tensor half = Tensor::empty({2}, DType::F16);  // flas reads F16 but does not convert to it
  const std::uint16_t one_and_two[2] = {0x3c00, 0x4000};
  std::memcpy(half.raw(), one_and_two, sizeof one_and_two);
  io::save_safetensors(scratch, {{"x", half}});
  fuzz::write_file(out / "one_tensor.safetensors", read_all(scratch));
}

void flow_seeds(const fs::path& out) {
  const gemma2::Config c = fuzz::tiny_flow_config();
  const fs::path scratch = fuzz::scratch_dir() / "flow.safetensors";
  auto make = [&](field::FlowSwitches sw, int blocks, DType dt, const std::string& name) {
    field::FlowWeights w;
    w.switches = sw;
    w.blocks.resize(std::size_t(blocks));
    field::for_each_flow_parameter(w, [&](const std::string& n, Tensor& t) { t = ramp(field::expected_flow_shape(n, c), dt); });
    field::FlowMeta meta;
    meta.layer = 1;
    field::save_flow(scratch, w, meta);
    std::string input = read_all(field::flow_meta_path(scratch));
    input.push_back('\0');
    input += read_all(scratch);
    fuzz::write_file(out / name, input);
  };
  make({false, true, true, true, false}, 1, DType::F32, "cross_attention_f32");
  make({false, false, false, true, true}, 2, DType::BF16, "pooled_two_blocks_bf16");
  make({true, false, false, true, false}, 1, DType::F32, "time_mlp_only");
}

void train_state_seeds(const fs::path& out) {
  const fs::path dir = fuzz::scratch_dir() / "state";
  fuzz::write_toy_state_folder(dir);
  std::string input = "state-3\n";
  input.push_back('\0');
  input += read_all(dir / "state-3" / "state.json");
  fuzz::write_file(out / "after_three_steps", input);
}

void generation_seeds(const fs::path& out) {
  std::string lines;
  for (int i = 0; i < 3; ++i) {
    eval::GenerationRecord r;
    r.cell = {i == 2 ? "none" : "flas", "rental services", i, i == 2 ? 0.0 : 1.5, 0};
    r.split = "held_in";
    r.instruction = "How do I rent a car?";
    r.text = "You can rent one at the airport.";
    r.token_ids = {2, 106, 1645, 108 + i};
    r.prefill_seconds = 0.01;
    r.decode_seconds = 0.02;
    lines += nlohmann::json(r).dump() + "\n";
  }
  fuzz::write_file(out / "three_records.jsonl", lines);
  fuzz::write_file(out / "torn_last_line.jsonl", lines + lines.substr(0, 40));
}

void gguf_seeds(const fs::path& out) {
  const fs::path scratch = fuzz::scratch_dir() / "seed.gguf";
  io::GgufWriter w;
  w.set("general.architecture", "gemma2").set("general.name", "seed").set("u32", std::uint32_t(7)).set("f32", 0.5f);
  w.set("flag", true).set("i64", std::int64_t(-3));
  w.set_array("tokenizer.ggml.tokens", std::vector<std::string>{"<pad>", "\xE2\x96\x81the", "<0x0A>"});
  w.set_array("tokenizer.ggml.scores", std::vector<float>{0, -1, -2});
  w.add_tensor("token_embd.weight", ramp({3, 4}, DType::F32)).add_tensor("blk.0.attn_norm.weight", ramp({4}, DType::BF16));
  w.write(scratch);
  fuzz::write_file(out / "model_like.gguf", read_all(scratch));
  interop::ControlVector cv;
  cv.model_hint = "gemma2";
  cv.n_embd = 4;
  cv.directions[1] = {1, -1, 0.5f, 2};
  cv.directions[3] = {0, 0, 1, 0};
  interop::write_control_vector(scratch, cv);
  fuzz::write_file(out / "control_vector.gguf", read_all(scratch));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* t : {"fuzz_safetensors", "fuzz_flow_checkpoint", "fuzz_train_state", "fuzz_generation_store", "fuzz_gguf"})
    fs::create_directories(out / t);
  safetensors_seeds(out / "fuzz_safetensors");
  flow_seeds(out / "fuzz_flow_checkpoint");
  train_state_seeds(out / "fuzz_train_state");
  generation_seeds(out / "fuzz_generation_store");
  gguf_seeds(out / "fuzz_gguf");
  return 0;
}
