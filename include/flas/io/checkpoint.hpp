#pragma once
// A model checkpoint as HF writes it: one `model.safetensors`, or shards listed by
// `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {"<tensor>": "<shard file>"}}).
// Either way callers see one set of names; every shard is opened (mapped) once, up front, and the
// index is checked against the shards so that a broken download fails at open() naming the index.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/io/safetensors.hpp"

namespace flas::io {

class Checkpoint {
 public:
  static constexpr std::string_view single_file_name = "model.safetensors";
  static constexpr std::string_view index_file_name = "model.safetensors.index.json";

  // A model folder (model.safetensors preferred, else the index), a .safetensors file, or an index file.
  static Checkpoint open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    if (fs::is_directory(path)) {
      if (fs::exists(path / single_file_name)) return open_single(path / single_file_name);
      if (fs::exists(path / index_file_name)) return open_index(path / index_file_name);
      fail(path.string(), ": folder has neither ", single_file_name, " nor ", index_file_name);
    }
    if (!fs::exists(path)) fail(path.string(), ": no such checkpoint file or folder");
    if (path.extension() == ".json") return open_index(path);
    return open_single(path);
  }

  // The file opened: the .safetensors file or the index.
  const std::filesystem::path& path() const { return path_; }
  bool is_sharded() const { return sharded_; }
  std::size_t shard_count() const { return shards_.size(); }
  std::size_t size() const { return shard_of_.size(); }

  bool contains(std::string_view name) const { return shard_of_.find(name) != shard_of_.end(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(shard_of_.size());
    for (const auto& [name, shard] : shard_of_) out.push_back(name);
    return out;
  }
  // The shard file holding `name` (the only file when not sharded).
  const SafeTensorsFile& file_of(std::string_view name) const {
    const auto it = shard_of_.find(name);
    if (it == shard_of_.end())
      fail(path_.string(), ": no tensor named '", name, "' (", detail::name_examples(names(), "the checkpoint"), ")");
    return shards_[it->second];
  }
  DType dtype(std::string_view name) const { return file_of(name).dtype(name); }
  Shape shape(std::string_view name) const { return file_of(name).shape(name); }
  Tensor get(std::string_view name) const { return file_of(name).get(name); }
  Tensor get(std::string_view name, DType expected, const Shape& expected_shape) const {
    return file_of(name).get(name, expected, expected_shape);
  }

 private:
  Checkpoint() = default;

  static Checkpoint open_single(const std::filesystem::path& file) {
    Checkpoint c;
    c.path_ = file;
    c.shards_.push_back(SafeTensorsFile::open(file));
    for (auto& name : c.shards_[0].names()) c.shard_of_.emplace(std::move(name), 0);
    return c;
  }

  static Checkpoint open_index(const std::filesystem::path& index) {
    const std::string where = index.string();
    std::ifstream in(index, std::ios::binary);
    if (!in) fail(where, ": cannot open the checkpoint index");
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object() || !j.contains("weight_map"))
      fail(where, ": a checkpoint index must be a JSON object with a \"weight_map\"");
    const auto& map = j["weight_map"];
    if (!map.is_object() || map.empty())
      fail(where, ": \"weight_map\" must be a non-empty object of tensor name -> shard file, found ", map.dump());

    Checkpoint c;
    c.path_ = index;
    c.sharded_ = true;
    std::map<std::string, std::size_t> shard_index;  // shard file name -> position in shards_
    for (const auto& [name, value] : map.items()) {
      if (!value.is_string())
        fail(where, ": weight_map entry for tensor '", name, "' must be a shard file name, found ", value.dump());
      const std::string shard = value.get<std::string>();
      auto found = shard_index.find(shard);
      if (found == shard_index.end()) {
        c.shards_.push_back(open_shard(index, name, shard));
        found = shard_index.emplace(shard, c.shards_.size() - 1).first;
      }
      const SafeTensorsFile& file = c.shards_[found->second];
      if (!file.contains(name))
        fail(where, ": weight_map puts tensor '", name, "' in shard '", shard, "', but that shard has no such tensor (",
             detail::name_examples(file.names(), "it"), ")");
      c.shard_of_.emplace(name, found->second);
    }
    return c;
  }

  // Shard names are plain relative paths next to the index; anything reaching elsewhere is refused.
  static SafeTensorsFile open_shard(const std::filesystem::path& index, const std::string& tensor,
                                    const std::string& shard) {
    namespace fs = std::filesystem;
    const std::string where = index.string();
    const fs::path rel(shard);
    bool escapes = shard.empty() || rel.is_absolute();
    for (const auto& part : rel) escapes = escapes || part == "..";
    if (escapes)
      fail(where, ": weight_map puts tensor '", tensor, "' in shard '", shard,
           "', which is not a file name inside the checkpoint folder");
    const fs::path file = index.parent_path() / rel;
    if (!fs::is_regular_file(file))
      fail(where, ": weight_map puts tensor '", tensor, "' in shard '", shard, "', but ", file.string(),
           " does not exist");
    try {
      return SafeTensorsFile::open(file);
    } catch (const Error& e) {
      fail(where, ": shard '", shard, "' is unreadable: ", e.what());
    }
  }

  std::filesystem::path path_;
  bool sharded_ = false;
  std::vector<SafeTensorsFile> shards_;
  std::map<std::string, std::size_t, std::less<>> shard_of_;  // tensor name -> position in shards_
};

}  // namespace flas::io
