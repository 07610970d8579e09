// Unicode data tables for the HF-tokenizers BPE tokenizer, generated into
// unicode_tables.cpp by scripts/gen_unicode_tables.py (checked in, so the
// build needs no Unicode data files). Lookups live in unicode_nfc.cpp and
// char_class.cpp; this header only describes the raw tables.
#pragma once

#include <cstdint>
#include <span>

namespace aviary::unicode {

// The UCD version the tables were generated from, and the version the NFC
// tables are restricted to (that of the reference implementation).
extern const char* const kUcdVersion;
extern const char* const kNfcVersion;

// Code points first..last all have canonical combining class `ccc` (> 0).
// Sorted, disjoint.
struct CccRange {
  char32_t first;
  char32_t last;
  uint8_t ccc;
};

// One step of a canonical decomposition: cp -> first (+ second, or 0 for a
// singleton). Sorted by cp. Hangul syllables are algorithmic and not listed.
struct Decomposition {
  char32_t cp;
  char32_t first;
  char32_t second;
};

// A primary composite: first + second -> composed. Sorted by (first, second).
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composed;
};

// Class flags of code points, as runs: every code point from `first` up to the
// next run's `first` has `flags`. The first run starts at U+0000.
enum ClassFlag : uint8_t {
  kLetter = 1,  // general category L*
  kNumber = 2,  // general category N*
  kSpace = 4,   // White_Space property (Oniguruma's and Rust's \s)
  kWord = 8,    // Rust regex \w: Alphabetic, M*, Nd, Pc, Join_Control
};
struct ClassRun {
  char32_t first;
  uint8_t flags;
};

std::span<const CccRange> ccc_ranges();
std::span<const Decomposition> decompositions();
std::span<const Composition> compositions();
std::span<const ClassRun> class_runs();

}  // namespace aviary::unicode
