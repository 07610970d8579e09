// Reader for the HuggingFace tokenizers JSON format (tokenizer.json), for the
// byte-level BPE tokenizers it can describe (GPT-2, GPT-NeoX 20B, ...).
//
// Only what such a tokenizer uses is read, and every setting Aviary does not
// implement is refused with an error rather than ignored, so a file that
// loads encodes exactly as HF tokenizers would. The post_processor is not
// read: Aviary never adds special tokens when encoding (HF's
// add_special_tokens=false), and padding/truncation do not apply.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/added_tokens.h"

namespace aviary {

struct HfBpeSpec {
  bool nfc = false;               // normalizer: NFC (otherwise none)
  bool add_prefix_space = false;  // ByteLevel pre-tokenizer settings
  bool use_regex = true;
  std::vector<std::pair<std::string, int32_t>> vocab;            // token (byte-level alphabet) -> id
  std::vector<std::pair<std::string, std::string>> merges;       // in rank order
  std::string unk_token;                                         // "" when there is none
  bool fuse_unk = false;
  std::vector<AddedToken> added_tokens;
};

// Parses the file's text. Throws aviary::Error "<source>: <what is wrong>"
// when it is not JSON, lacks a part, has a part of the wrong type, or asks
// for something unsupported (another model, normalizer, pre-tokenizer or
// decoder; BPE dropout; subword prefixes/suffixes; byte fallback).
HfBpeSpec parse_hf_bpe_json(std::string_view json_text, const std::string& source);

}  // namespace aviary
