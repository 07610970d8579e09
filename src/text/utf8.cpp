#include "text/utf8.h"

#include <cstdint>

namespace aviary {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class SeqKind { kComplete, kInvalid, kTruncated };

struct Seq {
  SeqKind kind;
  size_t len;  // complete: its length; invalid: bytes one U+FFFD replaces; truncated: bytes seen
};

// Classifies the sequence that starts at p[0] (n >= 1 bytes available).
// The allowed range of the second byte depends on the lead byte; that is
// what rules out overlongs (E0, F0), surrogates (ED) and values past
// U+10FFFF (F4). An invalid sequence's length is its maximal subpart, so
// the byte that broke it is examined again as a possible new lead byte.
Seq classify(const uint8_t* p, size_t n) {
  const uint8_t lead = p[0];
  if (lead < 0x80) return {SeqKind::kComplete, 1};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {SeqKind::kInvalid, 1};  // 80..C1, F5..FF never start a sequence
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= n) return {SeqKind::kTruncated, k};
    if (p[k] < lo || p[k] > hi) return {SeqKind::kInvalid, k};
    lo = 0x80;
    hi = 0xBF;
  }
  return {SeqKind::kComplete, need};
}

// Appends the decoded form of `s` to `out`, stopping before a truncated
// trailing sequence; returns how many bytes were consumed.
size_t decode_into(std::string_view s, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t run_start = 0;  // valid bytes are copied in runs, not one by one
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Seq seq = classify(p + i, n - i);
    if (seq.kind == SeqKind::kComplete) {
      i += seq.len;
      continue;
    }
    out.append(s.data() + run_start, i - run_start);
    if (seq.kind == SeqKind::kTruncated) return i;
    out.append(kReplacement);
    i += seq.len;
    run_start = i;
  }
  out.append(s.data() + run_start, n - run_start);
  return n;
}

}  // namespace

size_t utf8_error_offset(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Seq seq = classify(p + i, s.size() - i);
    if (seq.kind != SeqKind::kComplete) return i;
    i += seq.len;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool is_valid_utf8(std::string_view s) { return utf8_error_offset(s) == std::string_view::npos; }

std::string utf8_replace_invalid(std::string_view bytes) {
  Utf8StreamDecoder decoder;
  std::string out = decoder.push(bytes);
  out += decoder.flush();
  return out;
}

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  std::string out;
  if (pending_.empty()) {
    const size_t used = decode_into(bytes, out);
    pending_.assign(bytes.substr(used));
    return out;
  }
  // Rare path: finish the held-back sequence first. At most 3 bytes are held,
  // so joining them with the new input costs little.
  std::string joined = pending_;
  joined.append(bytes);
  const size_t used = decode_into(joined, out);
  pending_ = joined.substr(used);
  return out;
}

std::string Utf8StreamDecoder::flush() {
  // A held-back sequence is a valid prefix, i.e. one maximal subpart: Python
  // reports "unexpected end of data" for it with a single U+FFFD.
  std::string out = pending_.empty() ? "" : std::string(kReplacement);
  pending_.clear();
  return out;
}

}  // namespace aviary
