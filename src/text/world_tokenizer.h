// The RWKV World tokenizer (vocabulary rwkv_vocab_v20230424.txt).
//
// Encoding is greedy longest match over the raw bytes, identical to the
// official TRIE_TOKENIZER in ChatRWKV's rwkv_pip_package: at each position
// take the longest vocabulary entry that is a prefix of the remaining bytes.
// There is no normalisation and no BOS/EOS. The vocabulary has a token for
// every single byte, so any byte string can be encoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/tokenizer.h"
#include "text/world_vocab.h"

namespace aviary {

class WorldTokenizer : public Tokenizer {
 public:
  // Reads a vocabulary file: one "<id> <Python str/bytes repr> <byte length>"
  // per line. Throws aviary::Error naming the path (and line) on failure.
  static WorldTokenizer load(const std::string& path);

  // Parses vocabulary text already in memory; `source` names it in errors.
  static WorldTokenizer parse(std::string_view text, const std::string& source);

  // From entries already parsed (e.g. the vocabulary a GGUF file embeds).
  static WorldTokenizer from_entries(const std::vector<VocabEntry>& entries, const std::string& source);

  std::vector<int32_t> encode(std::string_view utf8) const override;
  std::vector<int32_t> encode_bytes(std::string_view raw_bytes) const override;
  std::string_view token_bytes(int32_t id) const override;
  int32_t vocab_size() const override { return int32_t(offsets_.size()) - 1; }
  std::string name() const override { return "rwkv_world"; }

 private:
  // Trie over token bytes. A node's child edges are contiguous and sorted by
  // byte, so a lookup scans a few bytes without pointer chasing; the few
  // nodes with many children (the root, " ", ...) get a direct 256-entry
  // table instead, since they are visited at almost every position.
  static constexpr uint32_t kDense = UINT32_MAX;  // n_edges value of a node with a table
  struct Node {
    int32_t token = -1;       // the id whose bytes end here, or -1
    uint32_t first_edge = 0;  // into edge_byte_/edge_node_, or into dense_ when n_edges == kDense
    uint32_t n_edges = 0;
  };
  using SortedToken = std::pair<std::string_view, int32_t>;

  WorldTokenizer() = default;
  void build_trie(const std::string& source);
  uint32_t build_node(const SortedToken* first, const SortedToken* last, size_t depth);
  void add_dense_tables();
  inline uint32_t child(uint32_t node, uint8_t byte) const;

  std::string blob_;               // every token's bytes, concatenated in id order
  std::vector<uint32_t> offsets_;  // id -> [offsets_[id], offsets_[id + 1]) in blob_
  std::vector<Node> nodes_;        // nodes_[0] is the root
  std::vector<uint8_t> edge_byte_;
  std::vector<uint32_t> edge_node_;
  std::vector<uint32_t> dense_;    // 256 child indices per dense node
};

}  // namespace aviary
