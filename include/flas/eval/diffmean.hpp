#pragma once
// DiffMean steering vectors (AxBench's strongest simple baseline), computed by flas from labelled rows:
// for each concept, the mean layer-L residual over its positive rows minus the mean over negative rows.
//
// Pooling: each row is the chat prompt followed by its response, and a row's vector is the mean over
// its *response* tokens only. The concept lives in the response (AxBench's positives and negatives
// share the same instructions), so prompt tokens would only dilute the difference; a per-row mean
// (rather than a per-token mean over all rows) keeps long responses from outweighing short ones.
// Negatives: the concept's own negatives and hard negatives when the files have them, else the shared
// negatives ("EEEEE") of the file the concept came from.
//
// Scale: the vector is the raw difference of means, so strength 1 moves a state, on average, from
// where negative text sits to where positive text sits; strengths are multiples of that natural step.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "flas/eval/labelled_rows.hpp"
#include "flas/eval/residual_capture.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::eval {

struct DiffMeanVectors {
  int layer = 0;
  std::vector<std::string> concepts;
  Tensor directions;  // F32 [C, H]

  std::int64_t index_of(const std::string& concept_text) const {
    for (std::size_t i = 0; i < concepts.size(); ++i)
      if (concepts[i] == concept_text) return std::int64_t(i);
    fail("DiffMean vectors: no vector for concept \"", concept_text, "\" (", concepts.size(), " concepts stored)");
  }
};

struct DiffMeanOptions {
  int layer = 0;
  std::int64_t max_response_tokens = 64;
  std::size_t batch_size = 16;
};

// The mean layer-L state over the response tokens of each (prompt, response) pair: [N, H] f32.
template <Backend B>
Tensor mean_response_states(const gemma2::Model<B>& model, const io::Tokenizer& tok,
                            const std::vector<std::pair<std::string, std::string>>& pairs, const DiffMeanOptions& opt) {
  const auto& cfg = model.config();
  FLAS_CHECK(opt.layer >= 0 && opt.layer < cfg.num_hidden_layers, "DiffMean: layer ", opt.layer,
             " does not exist in a model of ", cfg.num_hidden_layers, " layers");
  const std::int64_t H = cfg.hidden_size;
  Tensor out = zeros({std::int64_t(pairs.size()), H}, DType::F32);
  for (std::size_t first = 0; first < pairs.size(); first += opt.batch_size) {
    const std::size_t n = std::min(opt.batch_size, pairs.size() - first);
    std::vector<std::vector<std::int64_t>> seqs(n);
    std::vector<std::size_t> response_len(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& [prompt, response] = pairs[first + i];
      seqs[i] = io::encode_chat(tok, prompt, cfg.bos_token_id);
      auto r = tok.encode(response);
      if (std::int64_t(r.size()) > opt.max_response_tokens) r.resize(std::size_t(opt.max_response_tokens));
      FLAS_CHECK(!r.empty(), "DiffMean: row ", first + i, " has an empty response");
      response_len[i] = r.size();
      seqs[i].insert(seqs[i].end(), r.begin(), r.end());
    }
    auto [ids, valid] = left_pad(seqs, cfg.pad_token_id);
    auto cache = model.new_cache(ids.dim(0), ids.dim(1));
    ResidualCapture<B> capture{opt.layer, {}};
    model.forward(ids, valid, cache, capture);
    const std::int64_t S = ids.dim(1);
    for (std::size_t i = 0; i < n; ++i) {  // left padding: the response is the last tokens of the row
      const float* h = capture.captured.template data<float>() + std::int64_t(i) * S * H;
      float* dst = out.data<float>() + std::int64_t(first + i) * H;
      for (std::int64_t d = 0; d < H; ++d) {
        double sum = 0;
        for (std::int64_t s = S - std::int64_t(response_len[i]); s < S; ++s) sum += h[s * H + d];
        dst[d] = float(sum / double(response_len[i]));
      }
    }
  }
  return out;
}

// One vector per concept with positive rows in `rows`.
template <Backend B>
DiffMeanVectors compute_diffmean(const gemma2::Model<B>& model, const io::Tokenizer& tok,
                                 const std::vector<LabelledRow>& rows, const DiffMeanOptions& opt) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& r : rows) pairs.emplace_back(r.input, r.output);
  FLAS_CHECK(!pairs.empty(), "DiffMean: no labelled rows given");
  const Tensor states = mean_response_states(model, tok, pairs, opt);
  const std::int64_t H = states.dim(1);

  DiffMeanVectors v;
  v.layer = opt.layer;
  std::map<std::string, std::string> file_of;  // concept -> the file of its first positive row
  for (const auto& r : rows)
    if (r.label == RowLabel::positive && !file_of.count(r.concept_text)) {
      file_of[r.concept_text] = r.file;
      v.concepts.push_back(r.concept_text);
    }
  FLAS_CHECK(!v.concepts.empty(), "DiffMean: the labelled rows hold no positive row");
  v.directions = zeros({std::int64_t(v.concepts.size()), H}, DType::F32);
  for (std::size_t c = 0; c < v.concepts.size(); ++c) {
    const std::string& name = v.concepts[c];
    bool own_negatives = false;
    for (const auto& r : rows) own_negatives = own_negatives || (r.label != RowLabel::positive && r.concept_text == name);
    std::vector<double> pos(std::size_t(H), 0.0), neg(std::size_t(H), 0.0);
    std::size_t n_pos = 0, n_neg = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      const bool is_pos = r.label == RowLabel::positive && r.concept_text == name;
      const bool is_neg = r.label != RowLabel::positive &&
                          (own_negatives ? r.concept_text == name : (r.concept_text.empty() && r.file == file_of[name]));
      if (!is_pos && !is_neg) continue;
      auto& acc = is_pos ? pos : neg;
      (is_pos ? n_pos : n_neg)++;
      for (std::int64_t d = 0; d < H; ++d) acc[std::size_t(d)] += states.data<float>()[std::int64_t(i) * H + d];
    }
    FLAS_CHECK(n_neg > 0, "DiffMean: concept \"", name, "\" has no negative rows in ", file_of[name],
               " (neither its own nor shared \"EEEEE\" ones)");
    for (std::int64_t d = 0; d < H; ++d)
      v.directions.data<float>()[std::int64_t(c) * H + d] =
          float(pos[std::size_t(d)] / double(n_pos) - neg[std::size_t(d)] / double(n_neg));
  }
  return v;
}

// Saved as safetensors: "directions" [C, H] with the layer and the concept texts (JSON) as metadata.
inline void save_diffmean(const std::filesystem::path& file, const DiffMeanVectors& v) {
  io::save_safetensors(file, {{"directions", v.directions}},
                   {{"layer", std::to_string(v.layer)}, {"concepts", nlohmann::json(v.concepts).dump()},
                    {"method", "diffmean: mean response-token state, positives minus negatives"}});
}

inline DiffMeanVectors load_diffmean(const std::filesystem::path& file) {
  auto f = io::SafeTensorsFile::open(file);
  const auto& meta = f.metadata();
  FLAS_CHECK(meta.count("layer") && meta.count("concepts"), file.string(),
             ": not a DiffMean file (metadata 'layer' and 'concepts' expected)");
  DiffMeanVectors v;
  v.layer = std::stoi(meta.at("layer"));
  try {
    v.concepts = nlohmann::json::parse(meta.at("concepts")).get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    fail(file.string(), ": metadata 'concepts' is not a JSON list of strings (", e.what(), ")");
  }
  v.directions = convert(f.get("directions"), DType::F32);
  FLAS_CHECK(v.directions.rank() == 2 && v.directions.dim(0) == std::int64_t(v.concepts.size()), file.string(),
             ": tensor 'directions' ", v.directions.shape(), " does not hold one row per concept (",
             v.concepts.size(), ")");
  return v;
}

}  // namespace flas::eval
