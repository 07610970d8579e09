#include "text/unicode_nfc.h"

#include <algorithm>

#include "text/unicode.h"
#include "text/unicode_tables.h"

namespace aviary::unicode {
namespace {

// Hangul syllables decompose and compose algorithmically (Unicode ch. 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Below these no code point has a decomposition / a non-zero class, which
// lets ASCII and most Latin-1 skip the binary searches.
constexpr char32_t kFirstDecomposable = 0xC0;
constexpr char32_t kFirstCombining = 0x300;

const Decomposition* find_decomposition(char32_t cp) {
  if (cp < kFirstDecomposable) return nullptr;
  const auto table = decompositions();
  const auto it = std::lower_bound(table.begin(), table.end(), cp,
                                   [](const Decomposition& d, char32_t c) { return d.cp < c; });
  return it != table.end() && it->cp == cp ? &*it : nullptr;
}

// Canonical ordering: each run of marks (non-zero class) is sorted by class,
// keeping marks of equal class in order. A stable sort rather than insertion
// keeps long runs of marks (hostile input) from taking quadratic time.
void order_marks(std::u32string& s) {
  for (size_t i = 0; i < s.size();) {
    if (combining_class(s[i]) == 0) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < s.size() && combining_class(s[end]) != 0) ++end;
    if (end - i > 1) {
      std::stable_sort(s.begin() + i, s.begin() + end,
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    }
    i = end;
  }
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* d = find_decomposition(cp);
  if (d == nullptr) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);  // a mapping's parts may decompose further
  if (d->second != 0) decompose(d->second, out);
}

// The primary composite of a + b, or 0 if there is none.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto table = compositions();
  const auto it = std::lower_bound(table.begin(), table.end(), std::pair{a, b}, [](const Composition& c, auto key) {
    return c.first != key.first ? c.first < key.first : c.second < key.second;
  });
  return it != table.end() && it->first == a && it->second == b ? it->composed : 0;
}

// Canonical composition in place: each character joins the last starter when
// nothing between them blocks it (a blocker is a starter or a mark of the
// same or a higher class).
void compose(std::u32string& s) {
  if (s.empty()) return;
  size_t starter = 0;  // index in the output of the last starter
  int last_class = combining_class(s[0]) == 0 ? 0 : 256;  // 256: no starter yet, nothing composes
  size_t out = 1;
  for (size_t i = 1; i < s.size(); ++i) {
    const char32_t c = s[i];
    const int cc = combining_class(c);
    // last_class == 0 means the previous output character is the starter itself.
    const char32_t composed = last_class < cc || last_class == 0 ? compose_pair(s[starter], c) : 0;
    if (composed != 0) {
      s[starter] = composed;
      continue;
    }
    if (cc == 0) starter = out;
    last_class = cc;
    s[out++] = c;
  }
  s.resize(out);
}

}  // namespace

uint8_t combining_class(char32_t unit) {
  if (unit < kFirstCombining || unit >= kRawByteBase) return 0;
  const auto table = ccc_ranges();
  const auto it = std::upper_bound(table.begin(), table.end(), unit,
                                   [](char32_t c, const CccRange& r) { return c < r.first; });
  return it != table.begin() && unit <= it[-1].last ? it[-1].ccc : 0;
}

std::u32string nfc(std::u32string_view units) {
  std::u32string d;
  d.reserve(units.size());
  for (const char32_t u : units) decompose(u, d);
  order_marks(d);
  compose(d);
  return d;
}

std::string nfc_utf8(std::string_view bytes) {
  if (std::all_of(bytes.begin(), bytes.end(), [](char c) { return uint8_t(c) < 0x80; }))
    return std::string(bytes);  // ASCII is always in NFC
  std::string out;
  out.reserve(bytes.size());
  append_units(out, nfc(decode_units(bytes)));
  return out;
}

}  // namespace aviary::unicode
