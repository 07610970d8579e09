// Decoder for the Python string literals found in RWKV vocabulary files.
//
// rwkv_vocab_v20230424.txt stores each token as Python's repr() of a str or
// a bytes object; the official tokenizer eval()s it. We parse the literal
// ourselves so loading needs no Python and cannot run code.
#pragma once

#include <string>
#include <string_view>

namespace aviary {

// Returns the bytes a Python str literal ('...' or "...", UTF-8 encoded) or
// bytes literal (b'...' or b"...") denotes. Supports every escape Python
// accepts in such literals except \N{name}; unknown escapes such as \q keep
// their backslash, as in Python. Throws aviary::Error describing the problem
// (without location: the caller knows the file and line).
std::string parse_python_literal(std::string_view literal);

}  // namespace aviary
