// llama.cpp control vectors: the file format both ways, summing several scaled files, and steering the
// bundled model with one, checked against a second computation: the constant steering-vector field
// integrated by the flow-steering tap (T = 1, N = 1: h + 1·d, the same add by another path).
#include <doctest/doctest.h>

#include "flas/eval/diffmean.hpp"
#include "flas/field/steering_vector.hpp"
#include "flas/generate/generate.hpp"
#include "flas/interop/control_vector_steering.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "io/io_test_helpers.hpp"
#include "support/backends.hpp"

using namespace flas;
using namespace flas::test_io;

namespace {
const fs::path models = FLAS_PROJECT_MODELS;
const fs::path chat_dir = models / "tiny-gemma2-chat";

interop::ControlVector make(std::int64_t n, std::map<int, float> layers) {
  interop::ControlVector cv;
  cv.model_hint = "gemma2";
  cv.n_embd = n;
  for (auto [l, base] : layers)
    for (std::int64_t j = 0; j < n; ++j) cv.directions[l].push_back(base + 0.5f * float(j));
  return cv;
}

// The DiffMean direction of the bundled flow's first concept, times `scale`, as a [H] vector.
std::vector<float> diffmean_direction(float scale) {
  const auto dm = eval::load_diffmean(models / "tiny-gemma2-chat-flow" / "diffmean_layer3.safetensors");
  const float* p = dm.directions.data<float>();
  std::vector<float> d(p, p + dm.directions.dim(1));
  for (float& x : d) x *= scale;
  return d;
}
}  // namespace

TEST_CASE("control vector: written as llama.cpp's format and read back") {
  TempDir dir;
  const auto cv = make(4, {{2, 1.0f}, {5, -3.0f}});
  interop::write_control_vector(dir.path() / "cv.gguf", cv);
  const auto g = io::GgufFile::open(dir.path() / "cv.gguf");
  CHECK(g.get<std::string>("general.architecture") == "controlvector");
  CHECK(g.get<std::string>("controlvector.model_hint") == "gemma2");
  CHECK(g.get<std::uint32_t>("controlvector.layer_count") == 2);
  CHECK(g.info("direction.5").type->name == "F32");
  const auto back = interop::read_control_vector(dir.path() / "cv.gguf");
  CHECK(back.n_embd == 4);
  CHECK(back.directions == cv.directions);

  CHECK_FLAS_ERROR(interop::write_control_vector(dir.path() / "z.gguf", make(4, {{0, 1.0f}})), "layer 0 cannot be written");
  io::GgufWriter w;
  w.set("general.architecture", "controlvector").add_tensor("direction.0", Tensor::empty({4}, DType::F32));
  w.write(dir.path() / "zero.gguf");
  CHECK_FLAS_ERROR(interop::read_control_vector(dir.path() / "zero.gguf"), "zero.gguf", "direction.0");
  io::GgufWriter m;
  m.set("general.architecture", "gemma2").add_tensor("direction.1", Tensor::empty({4}, DType::F32));
  m.write(dir.path() / "model.gguf");
  CHECK_FLAS_ERROR(interop::read_control_vector(dir.path() / "model.gguf"), "general.architecture is 'gemma2'");
  io::GgufWriter r;
  r.add_tensor("direction.1", Tensor::empty({4}, DType::F32)).add_tensor("direction.2", Tensor::empty({5}, DType::F32));
  r.write(dir.path() / "ragged.gguf");
  CHECK_FLAS_ERROR(interop::read_control_vector(dir.path() / "ragged.gguf"), "'direction.2' has 5 elements, the others 4");
  io::GgufWriter o;
  o.add_tensor("direction.1", Tensor::empty({4}, DType::F32)).add_tensor("scale", Tensor::empty({1}, DType::F32));
  o.write(dir.path() / "other.gguf");
  CHECK_FLAS_ERROR(interop::read_control_vector(dir.path() / "other.gguf"), "tensor 'scale': a control vector holds only direction.N");
  io::GgufWriter b;
  b.add_tensor("direction.1", Tensor::empty({4}, DType::BF16));
  b.write(dir.path() / "bf16.gguf");
  CHECK_FLAS_ERROR(interop::read_control_vector(dir.path() / "bf16.gguf"), "expected a 1-D F32 vector");
}

TEST_CASE("control vector: FILE:SCALE arguments and several files summed as llama.cpp sums them") {
  CHECK(interop::parse_scaled_control_vector("a.gguf").scale == 1.0f);
  CHECK(interop::parse_scaled_control_vector("a.gguf:0.5").scale == 0.5f);
  CHECK(interop::parse_scaled_control_vector("d:/x.gguf:-2").file == "d:/x.gguf");
  CHECK(interop::parse_scaled_control_vector("d:/x.gguf").file == "d:/x.gguf");
  TempDir dir;
  interop::write_control_vector(dir.path() / "a.gguf", make(3, {{1, 1.0f}, {2, 2.0f}}));
  interop::write_control_vector(dir.path() / "b.gguf", make(3, {{2, -1.0f}, {4, 0.0f}}));
  const auto sum = interop::sum_control_vectors({{dir.path() / "a.gguf", 2.0f}, {dir.path() / "b.gguf", 0.5f}});
  CHECK(sum.directions.size() == 3);
  CHECK(sum.directions.at(1) == std::vector<float>{2.0f, 3.0f, 4.0f});
  CHECK(sum.directions.at(2) == std::vector<float>{2 * 2.0f + 0.5f * -1.0f, 2 * 2.5f + 0.5f * -0.5f, 2 * 3.0f + 0.5f * 0.0f});
  CHECK(sum.directions.at(4) == std::vector<float>{0.0f, 0.25f, 0.5f});
  interop::write_control_vector(dir.path() / "c.gguf", make(5, {{1, 1.0f}}));
  CHECK_FLAS_ERROR(interop::sum_control_vectors({{dir.path() / "a.gguf"}, {dir.path() / "c.gguf"}}), "c.gguf",
                   "directions of 5 elements, earlier files have 3");
}

TEST_CASE_TEMPLATE("control vector steering equals the steering-vector field at T = 1", B, FLAS_HOST_BACKENDS) {
  auto model = gemma2::Model<B>::load(chat_dir);
  const auto tok = io::Tokenizer::load(chat_dir);
  const auto& cfg = model.config();
  const auto ids = io::encode_chat(tok, "Write a short poem about the city.", cfg.bos_token_id);
  GenerateOptions opt;
  opt.max_new_tokens = 24;

  interop::ControlVector cv;
  cv.n_embd = cfg.hidden_size;
  cv.directions[3] = diffmean_direction(4.0f);
  interop::ControlVectorSteering<B> cvec(cv, cfg.hidden_size, int(cfg.num_hidden_layers));
  const auto steered = generate(model, {ids}, opt, cvec).tokens[0];

  Tensor dirs = Tensor::empty({1, cfg.hidden_size}, DType::F32);
  std::copy(cv.directions[3].begin(), cv.directions[3].end(), dirs.data<float>());
  field::SteeringVectorField<B> field(dirs);
  gemma2::FlowSteering<B, field::SteeringVectorField<B>> flow(field, field.condition({0}), {3, 1, {1.0f}, {}, 1.0f, {}});
  CHECK(generate(model, {ids}, opt, flow).tokens[0] == steered);
  // Not vacuous: the vector changes the text.
  CHECK(generate(model, {ids}, opt, gemma2::NoTap{}).tokens[0] != steered);

  // Layer range (inclusive): directions at layers 1 and 3, range [2, 5] keeps layer 3 only.
  cv.directions[1] = diffmean_direction(-8.0f);
  interop::ControlVectorSteering<B> ranged(cv, cfg.hidden_size, int(cfg.num_hidden_layers), {2, 5});
  CHECK(ranged.layers() == 1);
  CHECK(generate(model, {ids}, opt, ranged).tokens[0] == steered);
  interop::ControlVectorSteering<B> both(cv, cfg.hidden_size, int(cfg.num_hidden_layers));
  CHECK(both.layers() == 2);
  CHECK(generate(model, {ids}, opt, both).tokens[0] != steered);

  cv.directions[9] = cv.directions[3];
  CHECK_FLAS_ERROR(interop::ControlVectorSteering<B>(cv, cfg.hidden_size, int(cfg.num_hidden_layers)),
                   "a direction for layer 9, the model has layers 0..5");
  CHECK_FLAS_ERROR(interop::ControlVectorSteering<B>(cv, cfg.hidden_size + 1, 6), "directions of 256 elements");
}
