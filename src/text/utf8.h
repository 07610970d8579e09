// UTF-8 helpers for text that comes out of (or goes into) a tokenizer.
//
// Tokens are byte strings, so one token may end in the middle of a character.
// Utf8StreamDecoder lets streaming output print whole characters only, and
// replaces bytes that can never be valid with U+FFFD exactly as Python's
// bytes.decode("utf-8", errors="replace") does: one U+FFFD per "maximal
// subpart" of an ill-formed sequence (the Unicode-recommended practice).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace aviary {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values
// above U+10FFFF, and no sequence cut short at the end).
bool is_valid_utf8(std::string_view s);

// Byte offset of the first ill-formed sequence in `s`, or npos if it is valid.
size_t utf8_error_offset(std::string_view s);

// Appends the UTF-8 encoding of code point `cp` (which must be <= U+10FFFF).
void append_utf8(std::string& out, char32_t cp);

// The whole of `bytes` decoded with errors="replace" (push + flush at once).
std::string utf8_replace_invalid(std::string_view bytes);

class Utf8StreamDecoder {
 public:
  // Appends `bytes` to the stream and returns the longest prefix of the
  // not-yet-returned output that is complete UTF-8. A trailing sequence that
  // may still become valid with more bytes is held back; bytes that can never
  // become valid are replaced by U+FFFD at once.
  std::string push(std::string_view bytes);

  // Ends the stream: returns U+FFFD if an incomplete sequence is held back,
  // otherwise "". The decoder is then empty and may be reused.
  std::string flush();

  // Bytes held back by the last push (at most 3).
  size_t pending_size() const { return pending_.size(); }

 private:
  std::string pending_;
};

}  // namespace aviary
