#include "text/world_tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "text/utf8.h"
#include "text/world_vocab.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace aviary {
namespace {

// Nodes with more children than this get a direct table. With the World
// vocabulary that is ~530 of 116k nodes (~0.5 MB of tables).
constexpr uint32_t kDenseThreshold = 16;

std::string hex_byte(unsigned b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", b);
  return buf;
}

}  // namespace

// The file is mapped rather than read: it is parsed once, front to back.
WorldTokenizer WorldTokenizer::load(const std::string& path) {
  const auto file = MappedFile::open(path);
  return parse(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), path);
}

WorldTokenizer WorldTokenizer::parse(std::string_view text, const std::string& source) {
  return from_entries(parse_world_vocab(text, source), source);
}

WorldTokenizer WorldTokenizer::from_entries(const std::vector<VocabEntry>& entries, const std::string& source) {
  int32_t max_id = 0;
  size_t total = 0;
  for (const auto& e : entries) {
    max_id = std::max(max_id, e.id);
    total += e.bytes.size();
  }
  // Lay the bytes out in id order so token_bytes is two array reads. An id
  // without a line keeps an empty range, which marks it as absent.
  std::vector<const std::string*> by_id(size_t(max_id) + 1, nullptr);
  for (const auto& e : entries) by_id[e.id] = &e.bytes;
  WorldTokenizer tok;
  tok.blob_.reserve(total);
  tok.offsets_.assign(by_id.size() + 1, 0);
  for (size_t id = 0; id < by_id.size(); ++id) {
    if (by_id[id]) tok.blob_ += *by_id[id];
    tok.offsets_[id + 1] = uint32_t(tok.blob_.size());
  }
  tok.build_trie(source);
  return tok;
}

void WorldTokenizer::build_trie(const std::string& source) {
  // Sorting the tokens by their bytes puts every trie node's tokens in one
  // contiguous range, so the trie is built in one recursive pass with no
  // per-node allocation.
  std::vector<SortedToken> sorted;
  sorted.reserve(offsets_.size());
  for (int32_t id = 1; id < vocab_size(); ++id) {
    const std::string_view bytes = std::string_view(blob_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
    if (!bytes.empty()) sorted.emplace_back(bytes, id);
  }
  std::sort(sorted.begin(), sorted.end());
  nodes_.reserve(blob_.size() + 1);  // at most one node per token byte
  edge_byte_.reserve(blob_.size());
  edge_node_.reserve(blob_.size());
  build_node(sorted.data(), sorted.data() + sorted.size(), 0);
  add_dense_tables();

  // Greedy matching needs a token for every single byte, or some inputs
  // could not be encoded at all.
  for (unsigned b = 0; b < 256; ++b) {
    const uint32_t node = child(0, uint8_t(b));
    if (node == 0 || nodes_[node].token < 0)
      throw error_in(source, "the vocabulary has no token for the single byte " + hex_byte(b));
  }
}

// Builds the node for the prefix of length `depth` shared by the sorted
// tokens [first, last) and returns its index.
uint32_t WorldTokenizer::build_node(const SortedToken* first, const SortedToken* last, size_t depth) {
  const auto node = uint32_t(nodes_.size());
  nodes_.emplace_back();
  // Sorted order puts the token that is exactly this prefix first.
  if (first != last && first->first.size() == depth) nodes_[node].token = (first++)->second;

  size_t n_children = 0;
  for (const SortedToken* it = first; it != last; ++it)
    if (it == first || it->first[depth] != it[-1].first[depth]) ++n_children;
  const auto edges = uint32_t(edge_byte_.size());
  edge_byte_.resize(edges + n_children);
  edge_node_.resize(edges + n_children);
  nodes_[node].first_edge = edges;
  nodes_[node].n_edges = uint32_t(n_children);

  for (size_t k = 0; first != last; ++k) {
    const char byte = first->first[depth];
    const SortedToken* group_end = first;
    while (group_end != last && group_end->first[depth] == byte) ++group_end;
    edge_byte_[edges + k] = uint8_t(byte);
    const uint32_t child_node = build_node(first, group_end, depth + 1);
    edge_node_[edges + k] = child_node;
    first = group_end;
  }
  return node;
}

void WorldTokenizer::add_dense_tables() {
  for (Node& n : nodes_) {
    if (n.n_edges <= kDenseThreshold) continue;
    const auto table = uint32_t(dense_.size());
    dense_.resize(table + 256, 0);
    for (uint32_t e = n.first_edge; e < n.first_edge + n.n_edges; ++e) dense_[table + edge_byte_[e]] = edge_node_[e];
    n.first_edge = table;  // the node's sparse edges stay in place, unused
    n.n_edges = kDense;
  }
}

// Index of the child of `node` along `byte`, or 0 (the root is never a child).
inline uint32_t WorldTokenizer::child(uint32_t node, uint8_t byte) const {
  const Node& n = nodes_[node];
  if (n.n_edges == kDense) return dense_[n.first_edge + byte];
  const uint8_t* begin = edge_byte_.data() + n.first_edge;
  const uint8_t* end = begin + n.n_edges;
  const uint8_t* it = std::find(begin, end, byte);
  return it != end ? edge_node_[it - edge_byte_.data()] : 0;
}

std::vector<int32_t> WorldTokenizer::encode(std::string_view utf8) const {
  const size_t bad = utf8_error_offset(utf8);
  if (bad != std::string_view::npos) {
    throw Error("text to encode is not valid UTF-8 (byte offset " + std::to_string(bad) +
                "); use encode_bytes for raw bytes");
  }
  return encode_bytes(utf8);
}

std::vector<int32_t> WorldTokenizer::encode_bytes(std::string_view raw_bytes) const {
  const auto* p = reinterpret_cast<const uint8_t*>(raw_bytes.data());
  const size_t n = raw_bytes.size();
  std::vector<int32_t> ids;
  ids.reserve(n / 3 + 1);  // typical text averages 3-4 bytes per token
  size_t pos = 0;
  while (pos < n) {
    // Walk the trie as far as the input allows, remembering the last node
    // that ends a token: that is the longest match. Every single byte is a
    // token, so the first step always matches.
    uint32_t node = child(0, p[pos]);
    int32_t best_id = nodes_[node].token;
    size_t best_end = pos + 1;
    for (size_t i = pos + 1; i < n; ++i) {
      node = child(node, p[i]);
      if (node == 0) break;
      if (nodes_[node].token >= 0) {
        best_id = nodes_[node].token;
        best_end = i + 1;
      }
    }
    ids.push_back(best_id);
    pos = best_end;
  }
  return ids;
}

std::string_view WorldTokenizer::token_bytes(int32_t id) const {
  if (id >= 0 && id < vocab_size()) {
    const uint32_t begin = offsets_[id];
    const uint32_t end = offsets_[id + 1];
    if (end > begin || id == kEndOfTextId) return std::string_view(blob_).substr(begin, end - begin);
  }
  throw Error("token id " + std::to_string(id) + " is not in the " + name() + " vocabulary (ids 0.." +
              std::to_string(vocab_size() - 1) + ")");
}

}  // namespace aviary
