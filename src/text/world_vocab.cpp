#include "text/world_vocab.h"

#include <algorithm>
#include <charconv>

#include "text/py_literal.h"
#include "text/tokenizer.h"
#include "util/error.h"

namespace aviary {
namespace {

// Far above any real vocabulary, low enough that a corrupt id cannot make
// us allocate gigabytes.
constexpr uint32_t kMaxId = 1u << 24;

uint32_t parse_number(std::string_view field, const char* what) {
  uint32_t value = 0;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, value);
  if (field.empty() || ec != std::errc() || ptr != end)
    throw Error(std::string("bad ") + what + " \"" + std::string(field) + "\"");
  return value;
}

// One line. The literal may itself contain spaces, so the id ends at the
// first space and the length starts after the last one (as in the official
// loader).
VocabEntry parse_line(std::string_view line, std::vector<bool>& seen) {
  const size_t first = line.find(' ');
  const size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == last)
    throw Error("expected \"<id> <Python str or bytes literal> <byte length>\"");
  const uint32_t id = parse_number(line.substr(0, first), "token id");
  const uint32_t length = parse_number(line.substr(last + 1), "byte length");
  std::string bytes = parse_python_literal(line.substr(first + 1, last - first - 1));
  if (id == uint32_t(kEndOfTextId)) throw Error("id 0 is reserved for end-of-text");
  if (id >= kMaxId) throw Error("token id " + std::to_string(id) + " is implausibly large");
  if (bytes.size() != length) {
    throw Error("literal has " + std::to_string(bytes.size()) + " bytes but the length column says " +
                std::to_string(length));
  }
  if (bytes.empty()) throw Error("empty token");
  if (seen.size() <= id) seen.resize(std::max<size_t>(id + 1, seen.size() * 2));
  if (seen[id]) throw Error("token id " + std::to_string(id) + " appears twice");
  seen[id] = true;
  return {int32_t(id), std::move(bytes)};
}

}  // namespace

std::vector<VocabEntry> parse_world_vocab(std::string_view text, const std::string& source) {
  std::vector<VocabEntry> entries;
  entries.reserve(text.size() / 12);  // the World file averages ~17 bytes a line
  std::vector<bool> seen;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // tolerate CRLF files
    pos = end + 1;
    ++line_no;
    try {
      entries.push_back(parse_line(line, seen));
    } catch (const Error& e) {
      throw error_in(source + ":" + std::to_string(line_no), e.what());
    }
  }
  if (entries.empty()) throw error_in(source, "the vocabulary has no tokens");
  return entries;
}

}  // namespace aviary
