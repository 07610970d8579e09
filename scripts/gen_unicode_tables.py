#!/usr/bin/env python3
"""Generates src/text/unicode_tables.cpp from the Unicode Character Database.

The HF-tokenizers BPE tokenizer needs two kinds of Unicode data:

* NFC normalisation (canonical combining classes, canonical decompositions,
  primary composites). The reference implementation (HF tokenizers, crate
  unicode-normalization-alignments 0.1.12) has Unicode 9.0 tables, so these
  tables keep only code points assigned in Unicode 9.0 or earlier. That is
  exact: Unicode's normalization stability policy freezes the decomposition,
  combining class and composition exclusion of every assigned code point, so
  the current data restricted to Age <= 9.0 *is* the 9.0 data.
* Character classes for the GPT-2 pre-tokenizer regex (Oniguruma's \\p{L},
  \\p{N}, \\s) and for added tokens' single_word check (Rust regex \\w). These
  use the current data as is.

Usage: scripts/gen_unicode_tables.py [UCD_DIR] > src/text/unicode_tables.cpp
UCD_DIR defaults to /usr/share/unicode (Debian package `unicode-data`).
The build does not run this script; its output is checked in.
"""
import os
import sys

NFC_MAX_AGE = (9, 0)

LETTER, NUMBER, SPACE, WORD = 1, 2, 4, 8


def parse_ranges(path):
    """Yields (first, last, value) from a UCD 'XXXX..YYYY ; value # ...' file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cps, value = [s.strip() for s in line.split(";")[:2]]
            first, _, last = cps.partition("..")
            yield int(first, 16), int(last or first, 16), value


def read_unicode_data(path):
    """Returns {cp: (category, ccc, decomposition field)}, expanding First/Last ranges."""
    chars = {}
    pending_first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp, name, cat, ccc, decomp = int(fields[0], 16), fields[1], fields[2], int(fields[3]), fields[5]
            if name.endswith(", First>"):
                pending_first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(pending_first, cp + 1):
                    chars[c] = (cat, ccc, decomp)
                continue
            chars[cp] = (cat, ccc, decomp)
    return chars


def read_ages(path):
    ages = {}
    for first, last, value in parse_ranges(path):
        major, minor = (int(x) for x in value.split("."))
        for c in range(first, last + 1):
            ages[c] = (major, minor)
    return ages


def read_property(path, name):
    out = set()
    for first, last, value in parse_ranges(path):
        if value == name:
            out.update(range(first, last + 1))
    return out


def nfc_tables(chars, ages, exclusions):
    def in_nfc_version(c):
        return c in ages and ages[c] <= NFC_MAX_AGE

    ccc = {c: v[1] for c, v in chars.items() if v[1] and in_nfc_version(c)}
    decomp = {}
    for c, (_, _, d) in chars.items():
        if d and not d.startswith("<") and in_nfc_version(c):
            parts = [int(x, 16) for x in d.split()]
            assert 1 <= len(parts) <= 2, hex(c)
            decomp[c] = parts
    comp = []
    for c, parts in decomp.items():
        if len(parts) == 2 and c not in exclusions:
            comp.append((parts[0], parts[1], c))
    comp.sort()
    return ccc, decomp, comp


def ccc_ranges(ccc):
    ranges = []
    for c in sorted(ccc):
        if ranges and ranges[-1][1] == c - 1 and ranges[-1][2] == ccc[c]:
            ranges[-1][1] = c
        else:
            ranges.append([c, c, ccc[c]])
    return ranges


def class_ranges(chars, white_space, alphabetic, join_control):
    """Runs of equal class flags over all code points, as (first, flags)."""
    def flags(c):
        cat = chars[c][0] if c in chars else "Cn"
        f = 0
        if cat[0] == "L":
            f |= LETTER
        if cat[0] == "N":
            f |= NUMBER
        if c in white_space:
            f |= SPACE
        if c in alphabetic or cat[0] == "M" or cat in ("Nd", "Pc") or c in join_control:
            f |= WORD
        return f

    runs = []
    for c in range(0x110000):
        f = flags(c)
        if not runs or runs[-1][1] != f:
            runs.append((c, f))
    return runs


def emit_array(out, decl, rows, per_line):
    out.append(f"constexpr {decl}[] = {{")
    for i in range(0, len(rows), per_line):
        out.append("    " + " ".join(r + "," for r in rows[i:i + per_line]))
    out.append("};")
    out.append("")


def main():
    ucd = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    path = lambda name: os.path.join(ucd, name)
    chars = read_unicode_data(path("UnicodeData.txt"))
    ages = read_ages(path("DerivedAge.txt"))
    exclusions = read_property(path("DerivedNormalizationProps.txt"), "Full_Composition_Exclusion")
    white_space = read_property(path("PropList.txt"), "White_Space")
    join_control = read_property(path("PropList.txt"), "Join_Control")
    alphabetic = read_property(path("DerivedCoreProperties.txt"), "Alphabetic")
    with open(path("DerivedAge.txt"), encoding="utf-8") as f:  # first line: "# DerivedAge-15.0.0.txt"
        version = f.readline().strip().removeprefix("# DerivedAge-").removesuffix(".txt")

    ccc, decomp, comp = nfc_tables(chars, ages, exclusions)
    runs = class_ranges(chars, white_space, alphabetic, join_control)

    out = [
        "// GENERATED by scripts/gen_unicode_tables.py from the Unicode Character",
        f"// Database {version} (Debian package unicode-data). Do not edit by hand.",
        "//",
        "// NFC data keeps only code points assigned in Unicode "
        f"{NFC_MAX_AGE[0]}.{NFC_MAX_AGE[1]} (see the script for why).",
        '#include "text/unicode_tables.h"',
        "",
        "namespace aviary::unicode {",
        "namespace {",
        "",
    ]
    emit_array(out, "CccRange kCcc", [f"{{0x{a:04X}, 0x{b:04X}, {v}}}" for a, b, v in ccc_ranges(ccc)], 4)
    emit_array(out, "Decomposition kDecomp",
               [f"{{0x{c:04X}, 0x{p[0]:04X}, 0x{(p[1] if len(p) > 1 else 0):04X}}}" for c, p in sorted(decomp.items())], 4)
    emit_array(out, "Composition kComp", [f"{{0x{a:04X}, 0x{b:04X}, 0x{c:04X}}}" for a, b, c in comp], 4)
    emit_array(out, "ClassRun kClass", [f"{{0x{c:04X}, {f}}}" for c, f in runs], 6)
    out += [
        "}  // namespace",
        "",
        f'const char* const kUcdVersion = "{version}";',
        f'const char* const kNfcVersion = "{NFC_MAX_AGE[0]}.{NFC_MAX_AGE[1]}.0";',
        "std::span<const CccRange> ccc_ranges() { return kCcc; }",
        "std::span<const Decomposition> decompositions() { return kDecomp; }",
        "std::span<const Composition> compositions() { return kComp; }",
        "std::span<const ClassRun> class_runs() { return kClass; }",
        "",
        "}  // namespace aviary::unicode",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
