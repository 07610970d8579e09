// Byte-level BPE tokenizers read from HuggingFace tokenizers JSON files, such
// as GPT-NeoX 20B's 20B_tokenizer.json used by the RWKV-4 Pile/Raven models.
//
// Encoding follows HF tokenizers step by step (with add_special_tokens=false):
//   1. cut the added tokens with normalized=false (<|endoftext|>, ...) out of
//      the raw text;
//   2. NFC-normalise each remaining piece, if the file asks for NFC;
//   3. cut the added tokens with normalized=true (the runs of spaces) out of
//      the normalised pieces;
//   4. split the rest with the GPT-2 pattern (ByteLevel pre-tokenizer);
//   5. BPE-merge each word's bytes.
// Decoding concatenates each token's bytes (the ByteLevel decoder). Unlike
// the World tokenizer, id 0 here is the literal text "<|endoftext|>".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/added_tokens.h"
#include "text/bpe_model.h"
#include "text/tokenizer.h"

namespace aviary {

struct HfBpeSpec;

class HfBpeTokenizer : public Tokenizer {
 public:
  // Reads a tokenizer.json file. Throws aviary::Error naming the path.
  static std::unique_ptr<HfBpeTokenizer> load(const std::string& path);

  // Parses file text already in memory; `source` names it in errors.
  static std::unique_ptr<HfBpeTokenizer> parse(std::string_view json_text, const std::string& source);

  // The matchers point into added_, so the object stays where it was built.
  HfBpeTokenizer(const HfBpeTokenizer&) = delete;
  HfBpeTokenizer& operator=(const HfBpeTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view utf8) const override;
  // Bytes that are not valid UTF-8 are kept as they are, each one a
  // character of its own that is neither letter, number nor space (HF cannot
  // take such input at all). Throws aviary::Error for a byte the vocabulary
  // has no token for (for GPT-NeoX: C0, C1, F5..FF) unless there is an unk token.
  std::vector<int32_t> encode_bytes(std::string_view raw_bytes) const override;
  std::string_view token_bytes(int32_t id) const override;
  int32_t vocab_size() const override { return int32_t(kind_.size()); }
  std::string name() const override { return "hf_bpe"; }

  // True for added tokens marked special (HF's decode with
  // skip_special_tokens=true leaves them out).
  bool is_special(int32_t id) const;

 private:
  enum class Kind : uint8_t { kAbsent, kModel, kAdded, kSpecial };

  HfBpeTokenizer(const HfBpeSpec& spec, const std::string& source);
  void build_model(const HfBpeSpec& spec, const std::string& source);
  void build_token_table(const HfBpeSpec& spec, const std::string& source);
  void build_matchers(const HfBpeSpec& spec);
  void encode_raw_piece(std::string_view raw, std::vector<int32_t>& out) const;
  void encode_words(std::string_view normalized, std::vector<int32_t>& out) const;

  bool nfc_ = false;
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  std::vector<AddedToken> added_;      // the matchers point into this
  AddedTokenMatcher raw_matcher_;      // added tokens with normalized=false
  AddedTokenMatcher normalized_matcher_;
  std::unique_ptr<BpeModel> model_;
  std::string blob_;                   // every token's bytes in id order
  std::vector<uint32_t> offsets_;      // id -> [offsets_[id], offsets_[id + 1]) in blob_
  std::vector<Kind> kind_;             // id -> what it is; its size is vocab_size()
};

}  // namespace aviary
