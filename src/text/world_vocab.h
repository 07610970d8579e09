// Reader for the RWKV World vocabulary file format (rwkv_vocab_v20230424.txt):
// one token per line, "<id> <Python repr of a str or bytes> <byte length>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

struct VocabEntry {
  int32_t id;
  std::string bytes;  // never empty
};

// Parses the whole file text, checking each line: the id is a positive
// decimal (0 is reserved for end-of-text) that appears once, and the
// literal's byte count equals the length column. Throws aviary::Error as
// "<source>:<line>: <what is wrong>". Entries come back in file order.
std::vector<VocabEntry> parse_world_vocab(std::string_view text, const std::string& source);

}  // namespace aviary
