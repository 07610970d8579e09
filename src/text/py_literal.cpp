#include "text/py_literal.h"

#include <cstdint>

#include "text/utf8.h"
#include "util/error.h"

namespace aviary {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `digits` hex digits at body[pos]; Python rejects fewer.
uint32_t read_hex(std::string_view body, size_t pos, size_t digits, char escape) {
  uint32_t value = 0;
  for (size_t k = 0; k < digits; ++k) {
    const int h = pos + k < body.size() ? hex_value(body[pos + k]) : -1;
    if (h < 0) {
      throw Error(std::string("truncated \\") + escape + " escape (needs " +
                  std::to_string(digits) + " hex digits)");
    }
    value = value * 16 + uint32_t(h);
  }
  return value;
}

// A code point from \u, \U or an octal/\x escape in a str literal. Python
// would accept a lone surrogate here, but then str.encode("utf-8") fails, as
// does loading the official tokenizer, so it is an error for us too.
void append_code_point(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF) throw Error("escape denotes a value above U+10FFFF");
  if (cp >= 0xD800 && cp <= 0xDFFF) throw Error("escape denotes a surrogate, which UTF-8 cannot encode");
  append_utf8(out, char32_t(cp));
}

// A value from an octal or \x escape: a byte in bytes literals, a code
// point (U+0000..U+01FF, UTF-8 encoded) in str literals.
void append_small_value(std::string& out, uint32_t value, bool is_bytes) {
  if (!is_bytes) return append_code_point(out, value);
  if (value > 0xFF) throw Error("octal escape value above 0o377 in a bytes literal");
  out += char(value);
}

char simple_escape(char c) {
  switch (c) {
    case '\\': return '\\';
    case '\'': return '\'';
    case '"': return '"';
    case 'a': return '\a';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'v': return '\v';
    default: return 0;
  }
}

// Decodes the escape whose backslash is at body[pos - 1]; returns the
// position just after it.
size_t parse_escape(std::string_view body, size_t pos, bool is_bytes, std::string& out) {
  if (pos >= body.size()) throw Error("backslash at the end of the literal");
  const char c = body[pos];
  if (const char s = simple_escape(c)) {
    out += s;
    return pos + 1;
  }
  if (c >= '0' && c <= '7') {  // up to three octal digits
    uint32_t value = 0;
    size_t end = pos;
    while (end < body.size() && end < pos + 3 && body[end] >= '0' && body[end] <= '7')
      value = value * 8 + uint32_t(body[end++] - '0');
    append_small_value(out, value, is_bytes);
    return end;
  }
  if (c == 'x') {
    append_small_value(out, read_hex(body, pos + 1, 2, c), is_bytes);
    return pos + 3;
  }
  if (!is_bytes && (c == 'u' || c == 'U')) {
    const size_t digits = c == 'u' ? 4 : 8;
    append_code_point(out, read_hex(body, pos + 1, digits, c));
    return pos + 1 + digits;
  }
  if (!is_bytes && c == 'N') throw Error("\\N{name} escapes are not supported");
  // Python keeps an unrecognised escape (and \u, \U, \N in bytes) verbatim.
  out += '\\';
  return pos;
}

// Python reads the file as UTF-8, so a str literal's raw text must be valid
// UTF-8; bytes literals may only hold ASCII characters.
void check_raw_text(std::string_view body, bool is_bytes) {
  if (is_bytes) {
    for (const char c : body)
      if (uint8_t(c) >= 0x80) throw Error("non-ASCII character in a bytes literal");
  } else if (!is_valid_utf8(body)) {
    throw Error("str literal is not valid UTF-8");
  }
}

}  // namespace

std::string parse_python_literal(std::string_view literal) {
  size_t start = 0;
  const bool is_bytes = !literal.empty() && (literal[0] == 'b' || literal[0] == 'B');
  if (is_bytes) start = 1;
  if (start >= literal.size() || (literal[start] != '\'' && literal[start] != '"'))
    throw Error("expected a Python str or bytes literal, got \"" + std::string(literal) + "\"");
  const char quote = literal[start];
  if (literal.size() < start + 2 || literal.back() != quote)
    throw Error("literal is not closed by its opening quote");
  const std::string_view body = literal.substr(start + 1, literal.size() - start - 2);
  check_raw_text(body, is_bytes);

  std::string out;
  out.reserve(body.size());
  size_t pos = 0;
  while (pos < body.size()) {
    const char c = body[pos];
    if (c == quote) throw Error("unescaped quote inside the literal");
    if (c != '\\') {
      out += c;
      ++pos;
    } else {
      pos = parse_escape(body, pos + 1, is_bytes, out);
    }
  }
  return out;
}

}  // namespace aviary
