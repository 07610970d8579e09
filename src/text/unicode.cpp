#include "text/unicode.h"

#include <algorithm>
#include <array>

namespace aviary::unicode {
namespace {

// Length of the well-formed UTF-8 sequence at p[0..n), or 0 when it is
// ill-formed. The second byte's range depends on the lead byte: that rules
// out overlongs (E0, F0), surrogates (ED) and values past U+10FFFF (F4).
size_t sequence_length(const uint8_t* p, size_t n) {
  const uint8_t lead = p[0];
  if (lead < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if ((p[k] & 0xC0) != 0x80) return 0;
  return len;
}

char32_t decode_sequence(const uint8_t* p, size_t len) {
  static constexpr uint8_t kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t cp = p[0] & kLeadMask[len];
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[k] & 0x3F);
  return cp;
}

uint8_t lookup_flags(char32_t cp) {
  const auto runs = class_runs();
  // The last run whose first code point is <= cp.
  const auto it = std::upper_bound(runs.begin(), runs.end(), cp,
                                   [](char32_t c, const ClassRun& r) { return c < r.first; });
  return it == runs.begin() ? 0 : it[-1].flags;
}

// Latin-1 is looked up on almost every character of typical text, so it gets
// a direct table.
const std::array<uint8_t, 256>& latin1_flags() {
  static const std::array<uint8_t, 256> table = [] {
    std::array<uint8_t, 256> t{};
    for (char32_t c = 0; c < 256; ++c) t[c] = lookup_flags(c);
    return t;
  }();
  return table;
}

}  // namespace

std::u32string decode_units(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  std::u32string out;
  out.reserve(n);
  for (size_t i = 0; i < n;) {
    const size_t len = sequence_length(p + i, n - i);
    if (len == 0) {
      out += kRawByteBase + p[i];
      ++i;
    } else {
      out += decode_sequence(p + i, len);
      i += len;
    }
  }
  return out;
}

void append_units(std::string& out, std::u32string_view units) {
  for (const char32_t u : units) {
    if (u < 0x80) {
      out += char(u);
    } else if (u >= kRawByteBase) {
      out += char(u - kRawByteBase);
    } else if (u < 0x800) {
      out += char(0xC0 | (u >> 6));
      out += char(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      out += char(0xE0 | (u >> 12));
      out += char(0x80 | ((u >> 6) & 0x3F));
      out += char(0x80 | (u & 0x3F));
    } else {
      out += char(0xF0 | (u >> 18));
      out += char(0x80 | ((u >> 12) & 0x3F));
      out += char(0x80 | ((u >> 6) & 0x3F));
      out += char(0x80 | (u & 0x3F));
    }
  }
}

uint8_t class_flags(char32_t unit) {
  if (unit < 256) return latin1_flags()[unit];
  if (unit >= kRawByteBase) return 0;
  return lookup_flags(unit);
}

}  // namespace aviary::unicode
