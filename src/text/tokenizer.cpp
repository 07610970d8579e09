#include "text/tokenizer.h"

#include <cctype>

#include "text/bpe_tokenizer.h"
#include "text/world_tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace aviary {

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids) const {
  std::string out;
  for (const int32_t id : ids) out.append(token_bytes(id));
  return out;
}

namespace {

enum class FileKind { kWorldVocab, kHuggingFaceJson, kUnknown };

// Decides from the first non-blank character: HF tokenizer files are JSON
// objects, World vocabularies start with a decimal token id.
FileKind detect_kind(std::string_view content) {
  size_t i = 0;
  if (content.starts_with("\xEF\xBB\xBF")) i = 3;  // a UTF-8 BOM some editors add
  while (i < content.size() && std::isspace(static_cast<unsigned char>(content[i]))) ++i;
  if (i == content.size()) return FileKind::kUnknown;
  if (content[i] == '{') return FileKind::kHuggingFaceJson;
  if (i == 0 && std::isdigit(static_cast<unsigned char>(content[0]))) return FileKind::kWorldVocab;
  return FileKind::kUnknown;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const auto file = MappedFile::open(path);
  const std::string_view content(reinterpret_cast<const char*>(file->data()), file->size());
  switch (detect_kind(content)) {
    case FileKind::kWorldVocab:
      return std::make_unique<WorldTokenizer>(WorldTokenizer::parse(content, path));
    case FileKind::kHuggingFaceJson:
      // Byte-level BPE (GPT-NeoX 20B_tokenizer.json); any other kind of
      // HF tokenizer is refused there with an error saying what it is.
      return HfBpeTokenizer::parse(content, path);
    case FileKind::kUnknown:
      break;
  }
  throw error_in(path,
                 "unrecognised tokenizer file: expected an RWKV World vocabulary (lines of \"<id> <literal> "
                 "<byte length>\") or a HuggingFace tokenizers JSON file");
}

}  // namespace aviary
