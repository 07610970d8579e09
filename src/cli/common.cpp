#include <filesystem>

#include "cli/commands.h"
#include "util/error.h"

namespace aviary::cli {

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& what) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\n' || text[i] == '\t')) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ' && text[j] != '\n' && text[j] != '\t') ++j;
    const std::string item = text.substr(i, j - i);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX)
      throw Error(what + ": '" + item + "' is not a token id (a non-negative integer)");
    ids.push_back(int32_t(v));
    i = j;
  }
  return ids;
}

std::string find_vocab(const std::string& given, const std::string& model_path) {
  if (!given.empty()) return given;
  namespace fs = std::filesystem;
  const fs::path dir = fs::absolute(model_path).parent_path();
  for (const char* name : {"rwkv_vocab_v20230424.txt", "vocab.txt", "20B_tokenizer.json", "tokenizer.json"})
    if (fs::is_regular_file(dir / name)) return (dir / name).string();
  throw Error("no vocabulary found next to " + model_path +
              " (looked for rwkv_vocab_v20230424.txt, vocab.txt, 20B_tokenizer.json, tokenizer.json); "
              "give one with --vocab FILE");
}

}  // namespace aviary::cli
