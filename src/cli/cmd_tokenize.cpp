// aviary tokenize / aviary detokenize
#include <cstdio>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

Action add_tokenize(CLI::App& app) {
  struct Opts {
    std::string vocab, text, text_file;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--vocab", o->vocab, "vocabulary: rwkv_vocab_v20230424.txt (World) or 20B_tokenizer.json (GPT-NeoX)")->required();
  auto* text = app.add_option("text", o->text, "the text to tokenize");
  auto* file = app.add_option("--text-file", o->text_file, "read the text from a file ('-' for stdin)");
  text->excludes(file);
  app.add_flag("--json", o->json, "print {\"ids\": [...], \"tokens\": [...]} instead of a plain list");
  return [=] {
    if (o->text_file.empty() && text->count() == 0)
      throw Error("tokenize: give the text as an argument or with --text-file");
    std::string input = o->text;
    if (o->text_file == "-") input.assign(std::istreambuf_iterator<char>(std::cin), {});
    else if (!o->text_file.empty()) input = read_file(o->text_file);
    const auto tok = load_tokenizer(o->vocab);
    const std::vector<int32_t> ids = tok->encode_bytes(input);
    if (o->json) {
      nlohmann::json j;
      j["ids"] = ids;
      auto& pieces = j["tokens"] = nlohmann::json::array();
      for (int32_t id : ids) pieces.push_back(utf8_replace_invalid(tok->token_bytes(id)));
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
      std::printf("%s\n", line.c_str());
    }
    return 0;
  };
}

Action add_detokenize(CLI::App& app) {
  struct Opts {
    std::string vocab;
    std::vector<std::string> ids;
    bool raw = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--vocab", o->vocab, "vocabulary: rwkv_vocab_v20230424.txt (World) or 20B_tokenizer.json (GPT-NeoX)")->required();
  app.add_option("ids", o->ids, "token ids, as '1,2,3' or separate arguments")->required();
  app.add_flag("--raw", o->raw, "write the exact bytes, even if they are not valid UTF-8");
  return [=] {
    std::vector<int32_t> ids;
    for (const auto& s : o->ids) {
      auto part = parse_id_list(s, "detokenize");
      ids.insert(ids.end(), part.begin(), part.end());
    }
    const auto tok = load_tokenizer(o->vocab);
    const std::string bytes = tok->decode_bytes(ids);
    const std::string out = o->raw ? bytes : utf8_replace_invalid(bytes);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  };
}

}  // namespace aviary::cli
