#include "text/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include "text/byte_level.h"
#include "text/hf_tokenizer_json.h"
#include "text/unicode.h"
#include "text/unicode_nfc.h"
#include "text/utf8.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace aviary {
namespace {

// Real vocabularies have at most a few hundred thousand tokens.
constexpr int32_t kMaxIds = 1 << 24;

}  // namespace

std::unique_ptr<HfBpeTokenizer> HfBpeTokenizer::load(const std::string& path) {
  const auto file = MappedFile::open(path);
  return parse(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), path);
}

std::unique_ptr<HfBpeTokenizer> HfBpeTokenizer::parse(std::string_view json_text, const std::string& source) {
  const HfBpeSpec spec = parse_hf_bpe_json(json_text, source);
  return std::unique_ptr<HfBpeTokenizer>(new HfBpeTokenizer(spec, source));
}

HfBpeTokenizer::HfBpeTokenizer(const HfBpeSpec& spec, const std::string& source)
    : nfc_(spec.nfc), add_prefix_space_(spec.add_prefix_space), use_regex_(spec.use_regex), added_(spec.added_tokens) {
  build_model(spec, source);
  build_token_table(spec, source);
  build_matchers(spec);
}

// The merges name tokens by their strings; the model works on ids.
void HfBpeTokenizer::build_model(const HfBpeSpec& spec, const std::string& source) {
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(spec.vocab.size());
  for (const auto& [token, id] : spec.vocab) ids.emplace(token, id);
  auto id_of = [&](const std::string& token, const std::string& where) {
    const auto it = ids.find(token);
    if (it == ids.end()) throw error_in(source, where + ": token \"" + token + "\" is not in model.vocab");
    return it->second;
  };

  std::array<int32_t, 256> byte_ids;
  for (unsigned b = 0; b < 256; ++b) {
    const auto it = ids.find(byte_level_encode(std::string(1, char(b))));
    byte_ids[b] = it == ids.end() ? -1 : it->second;
  }
  std::vector<BpeModel::Merge> merges;
  merges.reserve(spec.merges.size());
  for (size_t i = 0; i < spec.merges.size(); ++i) {
    const auto& [left, right] = spec.merges[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    merges.push_back({id_of(left, where), id_of(right, where), id_of(left + right, where)});
  }
  const int32_t unk = spec.unk_token.empty() ? -1 : id_of(spec.unk_token, "model.unk_token");
  model_ = std::make_unique<BpeModel>(byte_ids, merges, unk, spec.fuse_unk);
}

// Lays every token's bytes out in id order so token_bytes is two array
// reads. An added token's content wins over a vocab entry with its id, as in
// HF's id_to_token.
void HfBpeTokenizer::build_token_table(const HfBpeSpec& spec, const std::string& source) {
  int32_t max_id = -1;
  for (const auto& [token, id] : spec.vocab) max_id = std::max(max_id, id);
  for (const AddedToken& t : added_) max_id = std::max(max_id, t.id);
  // Ids index a table, so a stray huge id would allocate gigabytes.
  if (max_id >= kMaxIds)
    throw error_in(source, "token id " + std::to_string(max_id) + " is too large (ids must be below " +
                               std::to_string(kMaxIds) + ")");
  std::vector<const std::string*> by_id(size_t(max_id + 1), nullptr);
  kind_.assign(by_id.size(), Kind::kAbsent);
  for (const auto& [token, id] : spec.vocab) {
    if (by_id[id] != nullptr)
      throw error_in(source, "model.vocab gives id " + std::to_string(id) + " to both \"" + *by_id[id] +
                                 "\" and \"" + token + "\"");
    by_id[id] = &token;
    kind_[id] = Kind::kModel;
  }
  for (const AddedToken& t : added_) {
    by_id[t.id] = &t.content;
    kind_[t.id] = t.special ? Kind::kSpecial : Kind::kAdded;
  }
  offsets_.assign(by_id.size() + 1, 0);
  for (size_t id = 0; id < by_id.size(); ++id) {
    if (by_id[id] != nullptr) blob_ += byte_level_decode(*by_id[id]);
    offsets_[id + 1] = uint32_t(blob_.size());
  }
}

// HF matches special tokens before other added tokens; the order only
// matters when two tokens have the same content.
void HfBpeTokenizer::build_matchers(const HfBpeSpec& spec) {
  std::vector<AddedTokenMatcher::Pattern> raw, normalized;
  for (const bool special : {true, false}) {
    for (const AddedToken& t : added_) {
      if (t.special != special) continue;
      if (!t.normalized) raw.push_back({t.content, &t});
      else normalized.push_back({nfc_ ? unicode::nfc_utf8(t.content) : t.content, &t});
    }
  }
  raw_matcher_ = AddedTokenMatcher(raw);
  normalized_matcher_ = AddedTokenMatcher(normalized);
}

std::vector<int32_t> HfBpeTokenizer::encode(std::string_view utf8) const {
  const size_t bad = utf8_error_offset(utf8);
  if (bad != std::string_view::npos) {
    throw Error("text to encode is not valid UTF-8 (byte offset " + std::to_string(bad) +
                "); use encode_bytes for raw bytes");
  }
  return encode_bytes(utf8);
}

std::vector<int32_t> HfBpeTokenizer::encode_bytes(std::string_view raw_bytes) const {
  std::vector<int32_t> out;
  out.reserve(raw_bytes.size() / 3 + 1);  // typical text averages 3-4 bytes per token
  for (const auto& piece : raw_matcher_.split(raw_bytes)) {
    if (piece.id >= 0) out.push_back(piece.id);
    else encode_raw_piece(raw_bytes.substr(piece.begin, piece.end - piece.begin), out);
  }
  return out;
}

// Steps 2-5 for text between raw added tokens.
void HfBpeTokenizer::encode_raw_piece(std::string_view raw, std::vector<int32_t>& out) const {
  const std::string normalized = nfc_ ? unicode::nfc_utf8(raw) : std::string(raw);
  for (const auto& piece : normalized_matcher_.split(normalized)) {
    if (piece.id >= 0) out.push_back(piece.id);
    else encode_words(std::string_view(normalized).substr(piece.begin, piece.end - piece.begin), out);
  }
}

// Steps 4-5 for a (non-empty) piece of normalised text.
void HfBpeTokenizer::encode_words(std::string_view normalized, std::vector<int32_t>& out) const {
  std::u32string units = unicode::decode_units(normalized);
  if (add_prefix_space_ && units.front() != U' ') units.insert(units.begin(), U' ');
  std::vector<size_t> ends;
  if (use_regex_) split_gpt2(units, ends);
  else ends.push_back(units.size());
  std::string word;
  size_t begin = 0;
  for (const size_t end : ends) {
    word.clear();
    unicode::append_units(word, std::u32string_view(units).substr(begin, end - begin));
    model_->encode_word(word, out);
    begin = end;
  }
}

std::string_view HfBpeTokenizer::token_bytes(int32_t id) const {
  if (id >= 0 && id < vocab_size() && kind_[id] != Kind::kAbsent)
    return std::string_view(blob_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  throw Error("token id " + std::to_string(id) + " is not in the " + name() + " vocabulary (ids 0.." +
              std::to_string(vocab_size() - 1) + ")");
}

bool HfBpeTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && kind_[id] == Kind::kSpecial;
}

}  // namespace aviary
