#include "model/gguf_rwkv7_vocab.h"

#include "util/error.h"

namespace aviary {

namespace {

constexpr int32_t kWorldDoubleNewlineId = 261;  // "\n\n": the end of a chat turn
constexpr const char* kHexDigits = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string rwkv_token_text(std::string_view bytes) {
  const bool has_single = bytes.find('\'') != std::string_view::npos;
  const bool has_double = bytes.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out;
  for (const char ch : bytes) {
    const auto c = uint8_t(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHexDigits[c >> 4];
      out += kHexDigits[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string rwkv_token_bytes(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (++i == text.size()) throw Error("token text '" + std::string(text) + "' ends with a lone backslash");
    switch (text[i]) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'x': {
        const int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
        const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) throw Error("token text '" + std::string(text) + "' has a bad \\x escape");
        out += char(hi * 16 + lo);
        i += 2;
        break;
      }
      default: out += text[i];  // \\ \' \" and anything else: the character itself
    }
  }
  return out;
}

int64_t add_world_vocab(GgufMetadata& metadata, const std::vector<VocabEntry>& vocab, int64_t n_vocab) {
  std::vector<GgufValue> tokens, types;
  tokens.reserve(size_t(n_vocab));
  types.reserve(size_t(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i) {
    tokens.push_back(GgufValue::string(i == 0 ? "<s>" : "[PAD" + std::to_string(i) + "]"));
    types.push_back(GgufValue::i32(int32_t(i == 0 ? GgufTokenType::Control : GgufTokenType::Unused)));
  }
  int64_t dropped = 0;
  bool has_eot = false;
  for (const VocabEntry& e : vocab) {
    if (e.id <= 0 || e.id >= n_vocab) {
      ++dropped;
      continue;
    }
    tokens[size_t(e.id)] = GgufValue::string(rwkv_token_text(e.bytes));
    types[size_t(e.id)] = GgufValue::i32(int32_t(GgufTokenType::Normal));
    has_eot |= e.id == kWorldDoubleNewlineId && e.bytes == "\n\n";
  }
  metadata.set("tokenizer.ggml.model", GgufValue::string("rwkv"));
  metadata.set("tokenizer.ggml.tokens", GgufValue::array(GgufType::String, std::move(tokens)));
  metadata.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::I32, std::move(types)));
  metadata.set("tokenizer.ggml.bos_token_id", GgufValue::u32(0));
  metadata.set("tokenizer.ggml.eos_token_id", GgufValue::u32(0));
  if (has_eot) metadata.set("tokenizer.ggml.eot_token_id", GgufValue::u32(kWorldDoubleNewlineId));
  metadata.set("tokenizer.chat_template", GgufValue::string("rwkv-world"));
  return dropped;
}

std::vector<VocabEntry> world_vocab_from_gguf(const GgufMetadata& metadata) {
  const GgufValue* model = metadata.find("tokenizer.ggml.model");
  if (!model || model->type() != GgufType::String || model->as_string() != "rwkv")
    throw Error("no RWKV World vocabulary in the file (tokenizer.ggml.model is not \"rwkv\")");
  const auto& tokens = metadata.get("tokenizer.ggml.tokens").as_array();
  const GgufValue* types_value = metadata.find("tokenizer.ggml.token_type");
  const std::vector<GgufValue>* types = types_value ? &types_value->as_array() : nullptr;
  if (types && types->size() != tokens.size())
    throw Error("tokenizer.ggml.token_type has " + std::to_string(types->size()) + " entries for " +
                std::to_string(tokens.size()) + " tokens");
  std::vector<VocabEntry> out;
  for (size_t i = 1; i < tokens.size(); ++i) {
    if (types && (*types)[i].as_int() != int32_t(GgufTokenType::Normal)) continue;
    const std::string& text = tokens[i].as_string();
    std::string bytes = rwkv_token_bytes(text);
    if (bytes.empty()) throw Error("token " + std::to_string(i) + " is empty");
    out.push_back({int32_t(i), std::move(bytes)});
  }
  return out;
}

std::string world_vocab_file_text(const std::vector<VocabEntry>& vocab) {
  std::string out;
  for (const VocabEntry& e : vocab) {
    const std::string text = rwkv_token_text(e.bytes);
    const bool double_quoted = e.bytes.find('\'') != std::string::npos && e.bytes.find('"') == std::string::npos;
    const char q = double_quoted ? '"' : '\'';
    out += std::to_string(e.id) + " b" + q + text + q + " " + std::to_string(e.bytes.size()) + "\n";
  }
  return out;
}

}  // namespace aviary
