#include "text/hf_tokenizer_json.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace aviary {
namespace {

using nlohmann::json;

// Reads one file; `fail` prefixes every message with the file name.
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& what) const { throw error_in(source_, what); }

  // obj[key], which must be an object; `path` names it in messages ("model.vocab").
  const json& object_member(const json& obj, const char* key, const std::string& path) const {
    const auto it = obj.find(key);
    if (it == obj.end()) fail("no \"" + path + "\" object");
    if (!it->is_object()) fail(path + " must be an object, not " + it->type_name());
    return *it;
  }

  // The member's "type" string ("" when the member is null or absent).
  std::string type_of(const json& obj, const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return "";
    if (!it->is_object()) fail(std::string(key) + " must be an object or null, not " + it->type_name());
    const auto t = it->find("type");
    if (t == it->end() || !t->is_string()) fail(std::string(key) + " has no \"type\" string");
    return t->get<std::string>();
  }

  bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(where + "." + key + " must be true or false, not " + it->dump());
    return it->get<bool>();
  }

  // An optional string setting; null and absent both read as "".
  std::string get_string(const json& obj, const char* key, const std::string& where) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return "";
    if (!it->is_string()) fail(where + "." + key + " must be a string or null, not " + it->dump());
    return it->get<std::string>();
  }

  int32_t get_id(const json& value, const std::string& where) const {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() > std::numeric_limits<int32_t>::max())
      fail(where + " must be a non-negative integer token id, not " + value.dump());
    return int32_t(value.get<int64_t>());
  }

 private:
  const std::string& source_;
};

void read_vocab(const Reader& r, const json& model, HfBpeSpec& spec) {
  const json& vocab = r.object_member(model, "vocab", "model.vocab");
  spec.vocab.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items())
    spec.vocab.emplace_back(token, r.get_id(id, "model.vocab[\"" + token + "\"]"));
}

void read_merges(const Reader& r, const json& model, HfBpeSpec& spec) {
  const auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) r.fail("model.merges must be an array of merges");
  spec.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    // Older files write a merge as "left right", newer ones as ["left", "right"].
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.fail(where + " must be two tokens separated by one space, not " + m.dump());
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      r.fail(where + " must be \"left right\" or [\"left\", \"right\"], not " + m.dump());
    }
  }
}

// Settings that would change how words are split into tokens: the ones
// Aviary does not implement are refused rather than silently ignored.
void read_model_options(const Reader& r, const json& model, HfBpeSpec& spec) {
  const auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() && !(dropout->is_number() && dropout->get<double>() == 0.0))
    r.fail("model.dropout is " + dropout->dump() + ": BPE dropout (random segmentation) is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!r.get_string(model, key, "model").empty()) r.fail(std::string("model.") + key + " is not supported");
  if (r.get_bool(model, "byte_fallback", false, "model")) r.fail("model.byte_fallback is not supported");
  if (r.get_bool(model, "ignore_merges", false, "model")) r.fail("model.ignore_merges is not supported");
  spec.unk_token = r.get_string(model, "unk_token", "model");
  spec.fuse_unk = r.get_bool(model, "fuse_unk", false, "model");
}

void read_model(const Reader& r, const json& model, HfBpeSpec& spec) {
  const auto type = model.find("type");  // absent in some older files, which are all BPE
  if (type != model.end() && !(type->is_string() && type->get<std::string>() == "BPE"))
    r.fail("model.type is " + type->dump() + ": only BPE models are supported");
  read_vocab(r, model, spec);
  read_merges(r, model, spec);
  read_model_options(r, model, spec);
}

void read_pipeline(const Reader& r, const json& root, HfBpeSpec& spec) {
  const std::string normalizer = r.type_of(root, "normalizer");
  if (normalizer != "" && normalizer != "NFC")
    r.fail("normalizer type \"" + normalizer + "\" is not supported (only NFC or none)");
  spec.nfc = normalizer == "NFC";

  if (r.type_of(root, "pre_tokenizer") != "ByteLevel")
    r.fail("pre_tokenizer must be of type \"ByteLevel\" (only byte-level BPE tokenizers are supported)");
  const json& pre = root["pre_tokenizer"];
  spec.add_prefix_space = r.get_bool(pre, "add_prefix_space", true, "pre_tokenizer");  // HF's default is true
  spec.use_regex = r.get_bool(pre, "use_regex", true, "pre_tokenizer");

  if (r.type_of(root, "decoder") != "ByteLevel") r.fail("decoder must be of type \"ByteLevel\"");
}

void read_added_tokens(const Reader& r, const json& root, HfBpeSpec& spec) {
  const auto list = root.find("added_tokens");
  if (list == root.end() || list->is_null()) return;
  if (!list->is_array()) r.fail("added_tokens must be an array, not " + std::string(list->type_name()));
  for (size_t i = 0; i < list->size(); ++i) {
    const json& t = (*list)[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) r.fail(where + " must be an object");
    if (!t.contains("id")) r.fail(where + " has no \"id\"");
    const auto content = t.find("content");
    if (content == t.end() || !content->is_string()) r.fail(where + ".content must be a string");
    AddedToken a;
    a.id = r.get_id(t["id"], where + ".id");
    a.content = content->get<std::string>();
    a.special = r.get_bool(t, "special", false, where);
    a.single_word = r.get_bool(t, "single_word", false, where);
    a.lstrip = r.get_bool(t, "lstrip", false, where);
    a.rstrip = r.get_bool(t, "rstrip", false, where);
    a.normalized = r.get_bool(t, "normalized", !a.special, where);  // HF: special tokens are raw by default
    spec.added_tokens.push_back(std::move(a));
  }
}

}  // namespace

HfBpeSpec parse_hf_bpe_json(std::string_view json_text, const std::string& source) {
  const Reader r(source);
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    r.fail(std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) r.fail("a HuggingFace tokenizers file must hold a JSON object");
  HfBpeSpec spec;
  read_model(r, r.object_member(root, "model", "model"), spec);
  read_pipeline(r, root, spec);
  read_added_tokens(r, root, spec);
  return spec;
}

}  // namespace aviary
