// The BPE model of a byte-level HF tokenizers file: a word's bytes start as
// one token each, then the merge with the lowest rank anywhere in the word is
// applied (the leftmost one on a tie) until no listed merge applies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace aviary {

class BpeModel {
 public:
  struct Merge {
    int32_t left;
    int32_t right;
    int32_t result;  // the rank is the merge's index in the list
  };

  // byte_ids[b]: the token of the single byte b, or -1 if there is none.
  // unk_id: the token for a byte without one, or -1 to make that an error.
  BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<Merge>& merges, int32_t unk_id,
           bool fuse_unk);
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  // Appends the tokens of one pre-tokenized word (its raw bytes). Throws
  // aviary::Error when a byte has no token and there is no unk token.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Rule {
    int32_t rank;
    int32_t result;
  };
  struct Cache;

  std::vector<int32_t> merge_word(std::string_view word) const;
  std::vector<int32_t> initial_symbols(std::string_view word) const;
  const Rule* find_rule(int32_t left, int32_t right) const;

  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<uint64_t, Rule> rules_;  // (left << 32 | right) -> rule
  int32_t unk_id_;
  bool fuse_unk_;
  std::unique_ptr<Cache> cache_;  // words seen before; a pointer keeps the model movable
};

}  // namespace aviary
