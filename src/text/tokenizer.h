// The tokenizer interface shared by every vocabulary Aviary can load (the
// RWKV World tokenizer and byte-level BPE tokenizers such as GPT-NeoX 20B's).
//
// Token ids are int32_t to match the model's embedding lookup. Id 0 is
// end-of-text in both RWKV vocabularies. In World it has no bytes and decodes
// to nothing; in GPT-NeoX 20B it is the added token "<|endoftext|>" and
// decodes to that text, as HF tokenizers does. Any other id the vocabulary
// lacks is an aviary::Error naming it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

inline constexpr int32_t kEndOfTextId = 0;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Tokenizes text. Throws aviary::Error naming the byte offset when `utf8`
  // is not valid UTF-8 (use encode_bytes for arbitrary bytes).
  virtual std::vector<int32_t> encode(std::string_view utf8) const = 0;

  // Tokenizes raw bytes, which need not be valid UTF-8.
  virtual std::vector<int32_t> encode_bytes(std::string_view raw_bytes) const = 0;

  // The exact bytes of the ids concatenated (may end mid-character; feed
  // them to Utf8StreamDecoder or utf8_replace_invalid for display).
  virtual std::string decode_bytes(std::span<const int32_t> ids) const;

  // The bytes of one token ("" for end-of-text).
  virtual std::string_view token_bytes(int32_t id) const = 0;

  // One more than the largest id the tokenizer knows (the model's embedding
  // may have more rows than this, e.g. 65536 vs 65530 for World).
  virtual int32_t vocab_size() const = 0;

  // Short identifier of the tokenizer kind, e.g. "rwkv_world".
  virtual std::string name() const = 0;
};

// Loads a tokenizer, choosing the kind from the file's content: an RWKV World
// vocabulary (rwkv_vocab_v20230424.txt) or a HuggingFace tokenizers JSON file
// with a byte-level BPE model (20B_tokenizer.json); other HF tokenizers are
// refused. Throws aviary::Error naming the path on any failure.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace aviary
