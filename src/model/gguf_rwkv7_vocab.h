// The RWKV World vocabulary as llama.cpp keeps it in GGUF metadata
// (tokenizer.ggml.model = "rwkv"), both ways.
//
// llama.cpp's converter stores token i at index i: index 0 is "<s>"
// (type CONTROL), each vocabulary token is the inside of Python's repr() of
// its bytes (b'\xe4\xb8\x80' -> "\xe4\xb8\x80", b"'" -> "'", b'\n' -> "\n"
// as two characters) with type NORMAL, and ids the file lacks up to the
// model's row count are "[PAD<i>]" of type UNUSED. llama.cpp undoes the
// escapes when it loads the file (\t \n \r \xHH, and \<c> for any other c).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf_value.h"
#include "text/world_vocab.h"

namespace aviary {

// llama_token_type values (llama.h) used in tokenizer.ggml.token_type.
enum class GgufTokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// The inside of Python's bytes repr: b'...'[2:-1], with Python's choice of
// quote (double quotes when the bytes hold ' but no ").
std::string rwkv_token_text(std::string_view bytes);

// llama.cpp's reading of such a text back to bytes. Throws aviary::Error on a
// dangling backslash or a bad \x escape.
std::string rwkv_token_bytes(std::string_view text);

// Adds the tokenizer keys for a vocabulary of `n_vocab` ids (the model's
// embedding rows): tokenizer.ggml.model, .tokens, .token_type, the BOS/EOS
// (0) and EOT ("\n\n", id 261 in World) ids, and tokenizer.chat_template
// "rwkv-world". Entries with ids >= n_vocab do not fit the model and are left
// out; returns how many were.
int64_t add_world_vocab(GgufMetadata& metadata, const std::vector<VocabEntry>& vocab, int64_t n_vocab);

// The NORMAL tokens of a GGUF file's "rwkv" vocabulary, by id. Throws
// aviary::Error when the file has no such vocabulary or it is malformed.
std::vector<VocabEntry> world_vocab_from_gguf(const GgufMetadata& metadata);

// The entries in the vocabulary file format ("<id> b'...' <length>" lines),
// which WorldTokenizer::parse() reads.
std::string world_vocab_file_text(const std::vector<VocabEntry>& vocab);

}  // namespace aviary
