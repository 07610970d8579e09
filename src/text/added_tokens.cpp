#include "text/added_tokens.h"

#include <algorithm>

#include "text/unicode.h"

namespace aviary {
namespace {

// The unit that ends just before text[pos] (pos > 0) and its byte length.
std::pair<char32_t, size_t> unit_before(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  // Step back over up to three continuation bytes to the start of the character.
  while (start > 0 && pos - start < 4 && (uint8_t(text[start]) & 0xC0) == 0x80) --start;
  const std::u32string units = unicode::decode_units(text.substr(start, pos - start));
  // If those bytes are not one character, only the last byte is a unit of its own.
  return units.size() == 1 ? std::pair{units[0], pos - start} : std::pair{units.back(), size_t(1)};
}

// The unit that starts at text[pos] (pos < size) and its byte length.
std::pair<char32_t, size_t> unit_at(std::string_view text, size_t pos) {
  const std::u32string units = unicode::decode_units(text.substr(pos, 4));
  std::string bytes;
  unicode::append_units(bytes, std::u32string_view(units).substr(0, 1));
  return {units[0], bytes.size()};
}

bool is_word(char32_t unit) { return (unicode::class_flags(unit) & unicode::kWord) != 0; }

// Start of the whitespace that ends at text[end] (HF's "\s*$" on text[..end]).
size_t trailing_space_start(std::string_view text, size_t end) {
  while (end > 0) {
    const auto [unit, len] = unit_before(text, end);
    if (!unicode::is_space(unit)) break;
    end -= len;
  }
  return end;
}

// End of the whitespace that starts at text[begin] (HF's "^\s*" on text[begin..]).
size_t leading_space_end(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    const auto [unit, len] = unit_at(text, begin);
    if (!unicode::is_space(unit)) break;
    begin += len;
  }
  return begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<Pattern>& patterns) {
  trie_.emplace_back();
  for (const Pattern& p : patterns) {
    if (p.text.empty()) continue;  // HF ignores empty added tokens
    uint32_t node = 0;
    for (const char c : p.text) {
      auto& kids = trie_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), std::pair{uint8_t(c), uint32_t(0)});
      if (it == kids.end() || it->first != uint8_t(c)) {
        it = kids.insert(it, {uint8_t(c), uint32_t(trie_.size())});
        trie_.emplace_back();  // invalidates `kids`, which is not used again
      }
      node = it->second;
    }
    if (trie_[node].pattern < 0) {  // of two equal patterns the first wins
      trie_[node].pattern = int32_t(tokens_.size());
      first_byte_[uint8_t(p.text[0])] = true;
    }
    tokens_.push_back(p.token);
  }
}

std::pair<int32_t, size_t> AddedTokenMatcher::longest_at(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  uint32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& kids = trie_[node].children;
    const auto it = std::lower_bound(kids.begin(), kids.end(), std::pair{uint8_t(text[i]), uint32_t(0)});
    if (it == kids.end() || it->first != uint8_t(text[i])) break;
    node = it->second;
    if (trie_[node].pattern >= 0) best = {trie_[node].pattern, i + 1 - pos};
  }
  return best;
}

// single_word: the match must not touch a word character on either side.
bool AddedTokenMatcher::accepts(const AddedToken& t, std::string_view text, size_t begin, size_t end) const {
  if (!t.single_word) return true;
  if (begin > 0 && is_word(unit_before(text, begin).first)) return false;
  if (end < text.size() && is_word(unit_at(text, end).first)) return false;
  return true;
}

std::vector<AddedTokenMatcher::Piece> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Piece> out;
  size_t done = 0;  // text before this is already in `out`
  for (size_t pos = 0; pos < text.size();) {
    if (!first_byte_[uint8_t(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [pattern, len] = longest_at(text, pos);
    if (pattern < 0) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + len;
    pos = end;  // the search goes on after the match even if the match is rejected
    const AddedToken& t = *tokens_[pattern];
    // A match inside whitespace an earlier rstrip took is dropped (HF would
    // emit overlapping pieces there).
    if (begin < done || !accepts(t, text, begin, end)) continue;
    if (t.lstrip) begin = std::max(trailing_space_start(text, begin), done);
    if (t.rstrip) end = leading_space_end(text, end);
    if (begin > done) out.push_back({done, begin, -1});
    out.push_back({begin, end, t.id});
    done = end;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
  return out;
}

}  // namespace aviary
