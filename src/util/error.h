// Error type used across Aviary: every failure a user can cause (bad file,
// bad flag, bad request) is reported by throwing aviary::Error with a message
// that names what is wrong and where.
#pragma once

#include <stdexcept>
#include <string>

namespace aviary {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds "context: message" so callers can prefix the file or tensor name.
inline Error error_in(const std::string& context, const std::string& message) {
  return Error(context + ": " + message);
}

}  // namespace aviary
