// Shared by the `aviary chat` command-line tests: the random-weight RWKV-7
// with the real World vocabulary, and a ban list that keeps its replies on
// one line and stops them from ever ending by themselves.
#pragma once

#include <string>

#include "common/test_util.h"
#include "text/tokenizer.h"

namespace aviary::test {

inline std::string chat_model() {
  return (refdata_case("v7_world_L2_C64_V65536_bf16") / "model.pth").string();
}
inline std::string chat_vocab() { return (shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }

// "--ban" ids: end-of-text and every token with a line break, so a reply is
// one line of text and runs until its token limit or a Ctrl-C.
inline std::string chat_ban_list() {
  const auto tok = load_tokenizer(chat_vocab());
  std::string ids = "0";
  for (int32_t id = 1; id < tok->vocab_size(); ++id) {
    const std::string_view b = tok->token_bytes(id);
    if (b.find('\n') != std::string_view::npos || b.find('\r') != std::string_view::npos)
      ids.append(",").append(std::to_string(id));
  }
  return ids;
}

}  // namespace aviary::test
