// Added tokens of a HuggingFace tokenizers file ("added_tokens"): strings
// such as <|endoftext|> that are cut out of the text before the model sees
// it, matched as HF's AddedVocabulary does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;  // only matches when no word character touches it
  bool lstrip = false;       // also takes the whitespace on its left
  bool rstrip = false;       // also takes the whitespace on its right
  bool normalized = true;    // matched in the normalised text rather than the raw text
  bool special = false;      // skipped by a decode that skips special tokens
};

// Finds added tokens in a text: leftmost-longest, non-overlapping matches of
// the patterns (HF's Aho-Corasick with MatchKind::LeftmostLongest), then each
// token's single_word / lstrip / rstrip rule applied to its match.
class AddedTokenMatcher {
 public:
  struct Pattern {
    std::string text;          // what to look for (normalised content for normalized tokens)
    const AddedToken* token;   // must outlive the matcher
  };
  struct Piece {
    size_t begin;
    size_t end;
    int32_t id;  // the added token's id, or -1 for text between tokens
    bool operator==(const Piece&) const = default;
  };

  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<Pattern>& patterns);

  // Splits `text` into added tokens and the (non-empty) text between them.
  std::vector<Piece> split(std::string_view text) const;

 private:
  struct Node {
    int32_t pattern = -1;  // index of the pattern that ends here
    std::vector<std::pair<uint8_t, uint32_t>> children;  // sorted by byte
  };
  // The longest pattern that starts at text[pos] (index, or -1) and its length.
  std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos) const;
  bool accepts(const AddedToken& t, std::string_view text, size_t begin, size_t end) const;

  std::vector<Node> trie_;  // trie_[0] is the root
  std::vector<const AddedToken*> tokens_;
  bool first_byte_[256] = {};  // bytes a pattern can start with, to skip the rest quickly
};

}  // namespace aviary
