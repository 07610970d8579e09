// Constants of the state-file layout shared by the reader, the writer and the
// fingerprint (docs/state-format.md is the specification; keep them in step).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "model/config.h"

namespace aviary::state_format {

inline constexpr char kMagic[8] = {'A', 'V', 'I', 'A', 'R', 'Y', 'S', 'T'};
inline constexpr uint32_t kDTypeF32 = 0;

// Byte offsets of the fixed header fields.
inline constexpr size_t kOffVersion = 8, kOffDType = 12, kOffFileSize = 16, kOffDataOffset = 24, kOffArch = 32,
                        kOffVersionName = 36, kOffDims = 48, kOffNTensors = 88, kOffNFloats = 96,
                        kOffFingerprint = 104, kOffTokenCount = 112, kOffNTokens = 120, kOffTextBytes = 128;
inline constexpr size_t kVersionFieldSize = 12;
inline constexpr size_t kFixedHeaderSize = 144;
inline constexpr size_t kTrailerSize = 4;  // the CRC-32
inline constexpr size_t kDataAlign = 64;   // tensor data starts at a multiple of this
inline constexpr size_t kMaxNameSize = 1024, kMaxDims = 8;

inline uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

inline int arch_generation(Arch a) {
  switch (a) {
    case Arch::RWKV4: return 4;
    case Arch::RWKV5: return 5;
    case Arch::RWKV6: return 6;
    case Arch::RWKV7: return 7;
  }
  return 0;
}

inline std::string fingerprint_hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

}  // namespace aviary::state_format
